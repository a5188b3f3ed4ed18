/**
 * The real AWS attestation documents under vectors/aws/ (aws-real-doc-N.cbor.hex, with the facts
 * read from each independently in aws-real-doc-N.json) and AWS's root, as the tests read them.
 * @module
 */
import { readFileSync } from 'node:fs';
import { unhex } from './hex.js';

/** AWS Nitro Enclaves Root-G1, as published (PEM). */
export const AWS_ROOT_PEM = readFileSync('vectors/aws/aws-nitro-root-g1.pem', 'utf8');

/** What aws-real-doc-N.json records about document N. */
export interface RealDocFacts {
  module_id: string;
  timestamp_ms: number;
  pcrs: Record<string, string>;
  user_data: { hex: string } | null;
  nonce: { hex: string } | null;
  public_key: { length: number } | null;
  a_time_chain_is_valid_unix_ms: number;
  chain_valid_window: { from_unix_ms: number; to_unix_ms: number };
  format: { payload_map_encoding: string };
}

/** Real AWS document N (1-10): its bytes and its recorded facts. */
export function realAwsDoc(n: number): { doc: Uint8Array; facts: RealDocFacts } {
  return {
    doc: unhex(readFileSync(`vectors/aws/aws-real-doc-${n}.cbor.hex`, 'utf8').trim()),
    facts: JSON.parse(readFileSync(`vectors/aws/aws-real-doc-${n}.json`, 'utf8')) as RealDocFacts,
  };
}
