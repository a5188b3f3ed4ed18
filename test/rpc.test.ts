// `nsm-emulator rpc`: the stdin/stdout interface other tools rely on.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ascii } from './helpers/hex.js';
import { repoRoot, runCli, spawnCli } from './helpers/cli.js';

const DESCRIBE_NSM = '6b44657363726962654e534d';
const EXTEND_16 = 'a169457874656e64504352a265696e64657810646461746143010203';
const DESCRIBE_16 = 'a16b4465736372696265504352a165696e64657810';
const AFTER_EXTEND = 'cb178fcd3f328244c05c6248723fd068b3a1dda878e1ab8be911098f199958add55d0c27f04826d27b44d949a650694e';

describe('rpc, hex mode', () => {
  it('answers one lowercase hex line per request, keeps state, skips blank lines, exits 0 at EOF', async () => {
    const input = `${EXTEND_16}\n\n   \n${DESCRIBE_16.toUpperCase().replace(/(..)/g, '$1 ')}\n`;
    const r = await runCli(['rpc', '--seed', '01'], input);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('a169' + ascii('ExtendPCR') + 'a164' + ascii('data') + '5830' + AFTER_EXTEND);
    expect(lines[1]).toBe('a16b' + ascii('DescribePCR') + 'a264' + ascii('lock') + 'f464' + ascii('data') + '5830' + AFTER_EXTEND);
  });

  it('a line that is not hex gets a message on stderr and no answer; later lines still work', async () => {
    const r = await runCli(['rpc'], `zz\nabc\n${DESCRIBE_16}\n`);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stdin line 1: expected hex/);
    expect(r.stderr).toMatch(/stdin line 2: expected hex/);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
  });

  it('malformed CBOR gets the device error as an answer line', async () => {
    const r = await runCli(['rpc'], 'ff\n');
    expect(r.stdout).toBe('a1654572726f7270496e76616c69644f7065726174696f6e\n');
  });

  it('--module-id, --pcr and --seed set the boot state', async () => {
    const v = 'ab'.repeat(48);
    const r = await runCli(['rpc', '--module-id', 'i-0aaaaaaaaaaaaaaaa-enc0123456789abcdef', '--pcr', `4=${v}`, '--pcr', `20=${v}`, '--json'], [
      '"DescribeNSM"', '{"DescribePCR":{"index":4}}', '{"DescribePCR":{"index":20}}'].join('\n'));
    const [nsm, p4, p20] = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(nsm.DescribeNSM.module_id).toBe('i-0aaaaaaaaaaaaaaaa-enc0123456789abcdef');
    expect(p4).toEqual({ DescribePCR: { lock: true, data: v } });
    expect(p20).toEqual({ DescribePCR: { lock: false, data: v } });
  });

  it('the same --seed gives the same module id and randomness in two processes', async () => {
    const input = `${DESCRIBE_NSM}\n6947657452616e646f6d\n`;
    const a = await spawnCli(['rpc', '--seed', '00ff', '--time', '2026-01-01T00:00:00Z'], input);
    const b = await spawnCli(['rpc', '--seed', '00ff', '--time', '2026-01-01T00:00:00Z'], input);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout.split('\n')).toHaveLength(3);
  });

  it('boots a production enclave by default, a debug one with --debug, all-zero PCRs with --bare', async () => {
    const ask = ['{"DescribePCR":{"index":0}}', '{"DescribePCR":{"index":4}}', '"DescribeNSM"'].join('\n');
    const zero = '00'.repeat(48);
    const answers = async (flags: string[]) => {
      const r = await runCli(['rpc', '--json', '--seed', '07', ...flags], ask);
      expect(r.code, r.stderr).toBe(0);
      const [p0, p4, nsm] = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
      return { p0: p0.DescribePCR.data as string, p4: p4.DescribePCR.data as string, id: nsm.DescribeNSM.module_id as string };
    };
    const prod = await answers([]);
    expect(prod.p0).not.toBe(zero);
    expect(prod.p4).not.toBe(zero);
    const debug = await answers(['--debug', '--parent-id', 'i-1234567890abcdef0']);
    expect(debug.p0).toBe(zero);
    expect(debug.p4).toBe('08f996b5d43e047a9eb51e7f548bfee7e164fd7dc8f65541f2ac09d6545ac812719327281c401a67a10fcba87ae79ce0');
    expect(debug.id.startsWith('i-1234567890abcdef0-enc')).toBe(true);
    const bare = await answers(['--bare']);
    expect([bare.p0, bare.p4]).toEqual([zero, zero]);
    const clash = await runCli(['rpc', '--bare', '--debug']);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(/--bare boots with every PCR zero; it cannot be combined with --debug/);
  });

  it('bad options name the option, the value and what was expected', async () => {
    const r = await runCli(['rpc', '--pcr', '40=00']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--pcr '40=00': PCR index 40 is not in 0..31/);
    const s = await runCli(['rpc', '--pcr', '4=abcd']);
    expect(s.stderr).toMatch(/--pcr '4=abcd': PCR 4 value is 2 bytes, expected 48/);
    const t = await runCli(['rpc', '--seed', 'xyz']);
    expect(t.stderr).toMatch(/--seed 'xyz': expected non-empty hex/);
    const u = await runCli(['rpc', '--bogus']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/--bogus/);
  });
});

describe('rpc, JSON mode', () => {
  it('speaks serde externally tagged JSON with hex bytes, both ways', async () => {
    const input = ['{"ExtendPCR":{"index":16,"data":"010203"}}', '{"LockPCR":{"index":16}}', '{"LockPCR":{"index":16}}', '{"LockPCRs":{"range":33}}', '{"Foo":1}'].join('\n');
    const r = await runCli(['rpc', '--json'], input);
    expect(r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual([
      { ExtendPCR: { data: AFTER_EXTEND } },
      'LockPCR',
      { Error: 'ReadOnlyIndex' },
      { Error: 'InvalidIndex' },
      { Error: 'InvalidOperation' },
    ]);
  });

  it('a line that is not JSON, or bad hex in a byte field, gets a message and no answer', async () => {
    const r = await runCli(['rpc', '--json'], 'nope\n{"ExtendPCR":{"index":16,"data":"xyz"}}\n"DescribeNSM"\n');
    expect(r.stderr).toMatch(/stdin line 1: not JSON/);
    expect(r.stderr).toMatch(/stdin line 2: "data" 'xyz': expected hex/);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('package', () => {
  it('resolves by its own name after a build', async () => {
    // A variable specifier: resolved by Node at run time (after `npm test` built dist/), not by tsc.
    const name = 'nsm-emulator';
    const m = (await import(name)) as typeof import('../src/index.js');
    expect(typeof m.NsmDevice).toBe('function');
  });

  it('npx nsm-emulator --help lists the commands', async () => {
    const { stdout } = await promisify(execFile)('npx', ['nsm-emulator', '--help'], { cwd: repoRoot });
    expect(stdout).toMatch(/Usage: nsm-emulator <command>/);
    expect(stdout).toMatch(/rpc +answer raw NSM requests/);
  });

  it('rpc --help documents the JSON form', async () => {
    const r = await runCli(['rpc', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\{"ExtendPCR":\{"index":16,"data":"010203"\}\}/);
  });
});
