/**
 * The inspector's model, re-exported by the package root: a report of one document for people
 * (fields decoded, chain, verdict per root) and the comparisons the page offers. The page's DOM
 * script (page.ts) is served to browsers and not exported.
 * @module
 */
export { inspectDocument, type InspectReport, type InspectOptions, type TrustedRoot, type Verdict, type PcrRow, type BytesField, type CertificateRow } from './report.js';
export { parseExpectedPcrs, comparePcrs, diffReports, ExpectedPcrsError, type PcrComparison, type FieldDifference } from './compare.js';
export { describePublicKey, type PublicKeyDescription } from './public-key.js';
