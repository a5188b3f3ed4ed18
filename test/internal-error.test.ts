// Every InternalError the device answers carries a reason: to library users through
// onInternalError and NsmError.cause, to CLI users on stderr (attest, rpc, serve) or in exec's
// log. The wire answer stays exactly {"Error":"InternalError"} (checked against the bytes
// nsm-api's serde encoding gives, a1 65 "Error" 6d "InternalError").
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type InternalErrorEvent, NsmDevice, NsmError, encodeRequest } from '../src/index.js';
import { ChainIssueError } from '../src/attestation/index.js';
import { main } from '../src/cli/main.js';
import { liveIo, runCli } from './helpers/cli.js';
import { compileClient, haveTool, tempDir } from './native/helpers.js';

const INTERNAL_ERROR_HEX = 'a1654572726f726d496e7465726e616c4572726f72';
const ATTESTATION = encodeRequest({ type: 'Attestation', userData: null, nonce: null, publicKey: null });
const ATTESTATION_HEX = Buffer.from(ATTESTATION).toString('hex');
const LATE = Date.UTC(2050, 0, 1);
const ROOT_WINDOW = "the device clock (2050-01-01T00:00:00.000Z) is outside the CA root's validity (2019-10-28T13:28:05.000Z to 2049-10-28T14:28:05.000Z)";
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function recorder() {
  const events: InternalErrorEvent[] = [];
  return { events, onInternalError: (e: InternalErrorEvent) => events.push(e) };
}

describe('library: the reason for each InternalError', () => {
  it('a clock outside the CA root: ChainIssueError in the event and in NsmError.cause; raw answer unchanged', async () => {
    const r = recorder();
    const d = new NsmDevice({ seed: '01', clock: () => LATE, onInternalError: r.onInternalError });
    expect(hex(await d.handleRaw(ATTESTATION))).toBe(INTERNAL_ERROR_HEX);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]!.request).toBe('Attestation');
    expect(r.events[0]!.reason).toBeInstanceOf(ChainIssueError);
    expect(r.events[0]!.reason.message).toContain(ROOT_WINDOW);
    const err = (await d.attestation().catch((e: unknown) => e)) as NsmError;
    expect(err).toBeInstanceOf(NsmError);
    expect(err.code).toBe('InternalError');
    expect(err.cause).toBeInstanceOf(ChainIssueError);
    expect(err.message).toContain(`NSM error: InternalError: ChainIssueError: ${ROOT_WINDOW}`);
    expect(await d.request({ type: 'Attestation', userData: null, nonce: null, publicKey: null })).toEqual({ type: 'Error', code: 'InternalError' });
    expect(r.events).toHaveLength(3);
  });

  it('an attester factory that throws, an attest() that rejects with a non-Error, a clock that stops giving numbers', async () => {
    const cases: Array<[ConstructorParameters<typeof NsmDevice>[0], RegExp]> = [
      [{ attester: () => { throw new Error('CA directory vanished'); } }, /^CA directory vanished$/],
      [{ attester: () => ({ attest: () => Promise.reject('HSM offline') }) }, /^HSM offline$/],
    ];
    let ticks = 0;
    cases.push([{ seed: '01', clock: () => (ticks++ === 0 ? LATE - 40 * 365 * 86_400_000 : Number.NaN) }, /device clock gave NaN/]);
    for (const [options, why] of cases) {
      const r = recorder();
      const d = new NsmDevice({ ...options, onInternalError: r.onInternalError });
      const err = (await d.attestation().catch((e: unknown) => e)) as NsmError;
      expect(err.code).toBe('InternalError');
      expect((err.cause as Error).message).toMatch(why);
      expect(r.events.map((e) => [e.request, e.reason.message])).toEqual([['Attestation', (err.cause as Error).message]]);
    }
  });

  it('a handler that throws on a malformed typed request', async () => {
    const r = recorder();
    const d = new NsmDevice({ onInternalError: r.onInternalError });
    const req = {
      type: 'DescribePCR',
      get index(): number {
        throw new RangeError('index getter exploded');
      },
    };
    expect(await d.request(req as never)).toEqual({ type: 'Error', code: 'InternalError' });
    expect(r.events[0]!.request).toBe('DescribePCR');
    expect(r.events[0]!.reason.message).toBe('index getter exploded');
  });

  it('requests dropped by reset() while waiting, through request() and handleRaw()', async () => {
    const r = recorder();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const d = new NsmDevice({
      onInternalError: r.onInternalError,
      attester: () => ({ attest: async () => (await gate, new Uint8Array([0x80])) }),
    });
    const first = d.attestation();
    const typed = d.describePcr(16).catch((e: unknown) => e);
    const raw = d.handleRaw(encodeRequest({ type: 'GetRandom' }));
    d.reset();
    release();
    await first;
    const err = (await typed) as NsmError;
    expect(err.code).toBe('InternalError');
    expect((err.cause as Error).message).toMatch(/^dropped: the device was reset/);
    expect(hex(await raw)).toBe(INTERNAL_ERROR_HEX);
    expect(r.events.map((e) => e.request)).toEqual(['DescribePCR', 'GetRandom']);
  });

  it('a listener that throws changes nothing; onInternalError must be a function', async () => {
    const d = new NsmDevice({ seed: '01', clock: () => LATE, onInternalError: () => { throw new Error('listener bug'); } });
    expect(hex(await d.handleRaw(ATTESTATION))).toBe(INTERNAL_ERROR_HEX);
    expect(() => new NsmDevice({ onInternalError: 'log' as never })).toThrow(/onInternalError must be a function/);
  });
});

describe('CLI: the reason on stderr (or in the exec log); the answer unchanged', () => {
  it('attest', async () => {
    const r = await runCli(['attest', '--time', '2050-01-01T00:00:00Z']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`nsm-emulator attest: the device answered InternalError: ChainIssueError: ${ROOT_WINDOW}: no certificate can be issued then; set the clock inside it, or use a CA whose root covers it\n`);
  });

  it('rpc: the stdout line is the exact answer, stderr names the line and the reason', async () => {
    const r = await runCli(['rpc', '--time', '2050-01-01T00:00:00Z'], `6b44657363726962654e534d\n${ATTESTATION_HEX}\n`);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')[1]).toBe(INTERNAL_ERROR_HEX);
    expect(r.stderr).toContain(`nsm-emulator rpc: stdin line 2: the device answered InternalError to Attestation: ChainIssueError: ${ROOT_WINDOW}`);
  });

  it('serve: the client gets the exact answer, stderr the reason (as a JSON line with --log)', async () => {
    const tmp = tempDir();
    try {
      for (const log of [false, true]) {
        const path = join(tmp.path, `s${log}.sock`);
        const t = liveIo();
        const done = main(['serve', '--socket', path, '--time', '2050-01-01T00:00:00Z', ...(log ? ['--log'] : [])], t.io);
        while (!t.out().includes('unix:')) await new Promise((res) => setTimeout(res, 10));
        const answer = await new Promise<Buffer>((resolve, reject) => {
          const s = connect(path);
          let buf = Buffer.alloc(0);
          s.on('data', (d: Buffer) => {
            buf = Buffer.concat([buf, d]);
            if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
              s.end();
              resolve(buf.subarray(4, 4 + buf.readUInt32BE(0)));
            }
          });
          s.on('error', reject);
          const len = Buffer.alloc(4);
          len.writeUInt32BE(ATTESTATION.length);
          s.write(Buffer.concat([len, ATTESTATION]));
        });
        expect(answer.toString('hex')).toBe(INTERNAL_ERROR_HEX);
        while (!t.err().includes('InternalError to Attestation') && !t.err().includes('"InternalError"')) await new Promise((res) => setTimeout(res, 10));
        process.emit('SIGTERM');
        expect(await done).toBe(0);
        if (log) {
          const line = t.err().split('\n').find((l) => l.includes('"event":"InternalError"'))!;
          expect(JSON.parse(line)).toEqual({ event: 'InternalError', request: 'Attestation', reason: expect.stringContaining(ROOT_WINDOW) });
        } else {
          expect(t.err()).toContain(`nsm-emulator serve: the device answered InternalError to Attestation: ChainIssueError: ${ROOT_WINDOW}`);
        }
      }
    } finally {
      tmp.remove();
    }
  });

  describe.skipIf(!haveTool('cc', 'the exec InternalError test (it builds the shim and a C client)'))('exec', () => {
    it('writes the reason into --log, or on stderr without it; the program gets the exact answer', async () => {
      const tmp = tempDir();
      const saved = process.env['XDG_CACHE_HOME'];
      process.env['XDG_CACHE_HOME'] = join(tmp.path, 'cache');
      try {
        const client = compileClient(tmp.path);
        const log = join(tmp.path, 'nsm.jsonl');
        const withLog = liveIo('');
        expect(await main(['exec', '--time', '2050-01-01T00:00:00Z', '--log', log, '--', client, 'send', ATTESTATION_HEX], withLog.io)).toBe(0);
        expect(withLog.out()).toContain(`ok ${INTERNAL_ERROR_HEX.length / 2} ${INTERNAL_ERROR_HEX}`);
        const event = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.event === 'InternalError');
        expect(event).toEqual({ event: 'InternalError', request: 'Attestation', reason: expect.stringContaining(ROOT_WINDOW) });
        const noLog = liveIo('');
        expect(await main(['exec', '--time', '2050-01-01T00:00:00Z', '--', client, 'send', ATTESTATION_HEX], noLog.io)).toBe(0);
        expect(noLog.err()).toContain(`nsm-emulator exec: the device answered InternalError to Attestation: ChainIssueError: ${ROOT_WINDOW}`);
      } finally {
        if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
        else process.env['XDG_CACHE_HOME'] = saved;
        tmp.remove();
      }
    });
  });
});
