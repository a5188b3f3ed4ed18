// Certificate parsing (src/x509) is linear in its input: the bytes per second of a certificate
// with 32,000 extensions against one of the same shape with 320 (a hundredth of the size), and
// of one with a 200 KB subject string against the committed test root certificate, in the same
// run (a quadratic step would show as a ratio far below 1; comparing the same shape keeps the
// per-byte cost of different content, such as many small extensions against a certificate that
// is mostly key and signature, out of the ratio). 320 and 3,200 extensions parse at the same
// bytes per second; at 32,000 the parse's short-lived objects outgrow V8's young generation and
// garbage collection takes about a third of the time, so the ratio sits near 0.5 rather than 1:
// a constant factor, where a quadratic step would give about 0.01. Also our parse of that certificate beside node:crypto's
// X509Certificate (OpenSSL) reading the same bytes. Targets: both linearity ratios >= 0.5.
import { X509Certificate } from 'node:crypto';
import { committedTestCa, parseCertificate } from '../dist/attestation/index.js';
import { compare } from './harness.js';

function header(bytes, p) {
  let len = bytes[p + 1];
  let start = p + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i];
    start += n;
  }
  return { start, end: start + len };
}

function children(bytes, node) {
  const out = [];
  for (let p = node.start; p < node.end; ) {
    const h = header(bytes, p);
    out.push({ tag: bytes[p], raw: bytes.subarray(p, h.end), start: h.start, end: h.end });
    p = h.end;
  }
  return out;
}

function tlv(tag, ...parts) {
  const size = parts.reduce((n, x) => n + x.length, 0);
  const len = size < 0x80 ? [size] : size < 0x10000 ? [0x82, size >> 8, size & 0xff] : [0x83, size >> 16, (size >> 8) & 0xff, size & 0xff];
  const out = new Uint8Array(1 + len.length + size);
  out.set([tag, ...len]);
  let o = 1 + len.length;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

/** The certificate with its TBS fields changed by `edit` (signature kept: parsing only). */
function rebuild(der, edit) {
  const top = children(der, header(der, 0));
  const fields = children(der, top[0]).map((f) => f.raw);
  return tlv(0x30, tlv(0x30, ...edit(fields)), top[1].raw, top[2].raw);
}

const oidArc = (n) => (n < 128 ? [n] : [0x80 | (n >> 7), n & 0x7f]);
const extension = (i) =>
  tlv(0x30, tlv(0x06, new Uint8Array([0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, ...oidArc(i >> 8), ...oidArc(i & 0xff)])), tlv(0x04, new Uint8Array([5, 0])));

export async function run() {
  const base = committedTestCa().root.der;
  const withExtensions = (n) => rebuild(base, (f) => [...f.slice(0, 7), tlv(0xa3, tlv(0x30, ...Array.from({ length: n }, (_, i) => extension(i))))]);
  const manyExtensions = withExtensions(32_000);
  const fewExtensions = withExtensions(320);
  const longName = rebuild(base, (f) => {
    const cn = tlv(0x31, tlv(0x30, tlv(0x06, new Uint8Array([0x55, 0x04, 0x03])), tlv(0x0c, new Uint8Array(200_000).fill(0x61))));
    return [...f.slice(0, 5), tlv(0x30, cn), ...f.slice(6)];
  });
  if (parseCertificate(manyExtensions).extensions.length !== 32_000) throw new Error('bench certificate did not parse as intended');
  const perByte = async (name, big, small = base, smallName = 'test root certificate') => {
    const row = await compare({
      name,
      fn: () => parseCertificate(big),
      baseline: `${smallName} (${small.length} B)`,
      baselineFn: () => parseCertificate(small),
      target: 0.5,
      ms: 200,
      extra: { unit: 'MB/s' },
    });
    row.opsPerSec *= big.length / 1e6;
    row.baselineOpsPerSec *= small.length / 1e6;
    row.ratio = row.opsPerSec / row.baselineOpsPerSec;
    row.pass = row.ratio >= row.target;
    return row;
  };
  return [
    await perByte(`x509 parse, 32,000 extensions (${(manyExtensions.length / 1e3).toFixed(0)} kB)`, manyExtensions, fewExtensions, 'the same with 320 extensions'),
    await perByte(`x509 parse, 200 KB subject CN (${(longName.length / 1e3).toFixed(0)} kB)`, longName),
    await compare({
      name: 'x509 parse, test root certificate',
      fn: () => parseCertificate(base),
      baseline: 'node:crypto X509Certificate',
      baselineFn: () => new X509Certificate(base),
    }),
  ];
}
