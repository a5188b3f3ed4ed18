// examples/vmm-loop.js runs as documented (against dist/, which `npm test` builds first) and
// prints a DescribeNSM and a signed attestation document obtained through the virtqueue.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

it('the example VMM loop prints DescribeNSM and an attestation done through the virtqueue', () => {
  if (!existsSync(`${root}dist/virtio/index.js`)) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  const out = execFileSync(process.execPath, ['examples/vmm-loop.js'], { cwd: root, encoding: 'utf8' });
  expect(out).toContain('DescribeNSM through the virtqueue:');
  expect(out).toMatch(/module_id: "i-[0-9a-f]{17}-enc[0-9a-f]{16}"/);
  expect(out).toContain('Attestation through the virtqueue: Attestation');
  // ES384 protected header and a 96-byte r||s signature, as real documents.
  expect(out).toMatch(/COSE_Sign1\), protected header a1013822, signature 96 bytes/);
  expect(out).toContain("user_data: h'68656c6c6f'");
  expect(out).toContain('device status 0xf, used index 4');
});
