// What `openssl x509` prints for the fields src/x509 reads, rebuilt from our parse, so tests
// can compare the two readings of a certificate: serial, names, validity, the five extensions
// we decode and the public key.
import { parseCertificate } from '../../src/x509/certificate.js';
import { der, derSequence } from '../../src/x509/der-write.js';
import { TAG } from '../../src/x509/der.js';
import { NAME_OIDS } from '../../src/x509/oids.js';
import { pemEncode } from '../../src/x509/pem.js';

/** The openssl x509 arguments whose output {@link asOpensslPrints} reproduces (certificate on stdin). */
export const OPENSSL_X509_ARGS = ['x509', '-inform', 'DER', '-noout', '-serial', '-subject', '-issuer', '-startdate', '-enddate', '-nameopt', 'utf8,sep_comma_plus', '-ext', 'basicConstraints,keyUsage,subjectKeyIdentifier,authorityKeyIdentifier,crlDistributionPoints', '-pubkey'];

/** openssl lists the extensions in its own fixed order: compare the output as a sorted list of blocks. */
export function opensslBlocks(text: string): string[] {
  return text.split('\n').map((l) => l.trimEnd()).filter(Boolean).join('\n').split(/\n(?=\S)/).sort();
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const opensslTime = (ms: number) => {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()} GMT`;
};
const colonHex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase().match(/../g)!.join(':');
const KU_TEXT: Record<string, string> = {
  digitalSignature: 'Digital Signature',
  nonRepudiation: 'Non Repudiation',
  keyEncipherment: 'Key Encipherment',
  dataEncipherment: 'Data Encipherment',
  keyAgreement: 'Key Agreement',
  keyCertSign: 'Certificate Sign',
  cRLSign: 'CRL Sign',
  encipherOnly: 'Encipher Only',
  decipherOnly: 'Decipher Only',
};

/** What `openssl x509` prints for the fields we read, rebuilt from our parse. */
export function asOpensslPrints(certDer: Uint8Array): string {
  const c = parseCertificate(certDer);
  const short = (oid: string) => Object.entries(NAME_OIDS).find(([, o]) => o === oid)?.[0] ?? oid;
  const name = (attrs: typeof c.issuerAttributes) => attrs.map((a, i) => `${i === 0 ? '' : attrs[i - 1]!.rdn === a.rdn ? '+' : ','}${short(a.oid)}=${a.value}`).join('');
  const lines = [
    `serial=${Buffer.from(c.serial).toString('hex').toUpperCase()}`,
    `subject=${name(c.subjectAttributes)}`,
    `issuer=${name(c.issuerAttributes)}`,
    `notBefore=${opensslTime(c.notBefore)}`,
    `notAfter=${opensslTime(c.notAfter)}`,
  ];
  for (const e of c.extensions) {
    const crit = e.critical ? 'critical' : '';
    switch (e.oid) {
      case '2.5.29.19':
        lines.push(`X509v3 Basic Constraints: ${crit}`, `    CA:${c.basicConstraints!.ca ? 'TRUE' : 'FALSE'}${c.basicConstraints!.pathLen === null ? '' : `, pathlen:${c.basicConstraints!.pathLen}`}`);
        break;
      case '2.5.29.15':
        lines.push(`X509v3 Key Usage: ${crit}`, `    ${Object.keys(KU_TEXT).filter((k) => c.keyUsage!.has(k as never)).map((k) => KU_TEXT[k]).join(', ')}`);
        break;
      case '2.5.29.14':
        lines.push(`X509v3 Subject Key Identifier: ${crit}`, `    ${colonHex(c.subjectKeyId!)}`);
        break;
      case '2.5.29.35':
        lines.push(`X509v3 Authority Key Identifier: ${crit}`, `    ${colonHex(c.authorityKeyId!)}`);
        break;
      case '2.5.29.31':
        lines.push(`X509v3 CRL Distribution Points: ${crit}`, '    Full Name:', ...c.crlDistributionPoints!.flatMap((p) => p.uris.map((u) => `      URI:${u}`)));
        break;
    }
  }
  // The SubjectPublicKeyInfo as openssl re-encodes it from the key it loaded.
  const spki = derSequence(c.publicKeyAlgorithmId.der, der(TAG.BIT_STRING, new Uint8Array([0]), c.publicKey));
  lines.push(pemEncode('PUBLIC KEY', spki).trim());
  return lines.map((l) => l.trimEnd()).join('\n');
}

