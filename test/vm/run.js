#!/usr/bin/env node
/**
 * `npm run test:vm`: an unmodified QEMU and an unmodified Linux guest use nsm-emulator as their
 * NSM. QEMU 11 (Debian trixie-backports, run from a trixie root made with debootstrap) connects
 * its `vfio-user-pci` device to `nsm-emulator vfio-user`; the guest (Debian's 6.12 kernel) loads
 * the stock nsm.ko, and an initramfs script drives /dev/nsm and the hwrng with the project's own
 * static C client (test/native/nsm-client.c). The host then checks every answer: against what the
 * server logged (the transport changed no byte), against a fresh in-process device replaying the
 * same request sequence (byte-identical), and against independent references (SHA-384 of the PCR
 * extension with node:crypto, the attestation verified against the test root). One line per
 * check, then "N passed, M failed"; exit 1 if anything failed, 2 if the machine cannot run it.
 *
 * Cache (reused across runs): $XDG_CACHE_HOME/nsm-emulator/vm or ~/.cache/nsm-emulator/vm:
 *   trixie-root/   debootstrap --variant=minbase trixie + qemu-system-x86 from trixie-backports
 *   debs/          linux-image-*-amd64 and busybox-static packages (apt-get download)
 *   guest/         vmlinuz, nsm.ko and its dependencies, busybox, extracted from those packages
 * Needs root (debootstrap, chroot) and debootstrap; not /dev/kvm (TCG). NSM_VM_KEEP=1 keeps the
 * run directory (serial log, server log) for inspection.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newcArchive } from './cpio.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => import(join(ROOT, 'dist', p));
const { defaultNativeCacheDir, buildNative } = await dist('node/native-build.js');
const { encodeRequest, decodeResponse, NsmDevice, verifyAttestationDocument } = await dist('index.js');
const { deviceOptionsFromFlags } = await dist('cli/boot-options.js');

const CACHE = join(defaultNativeCacheDir(), 'vm');
const ROOTFS = join(CACHE, 'trixie-root');
const STAMP = join(ROOTFS, '.nsm-emulator-ready');
const STAMP_TEXT = 'trixie minbase + qemu-system-x86 (trixie-backports), v1\n';
const MIRROR = process.env.NSM_VM_MIRROR || 'http://deb.debian.org/debian';
const BOOT_FLAGS = { seed: '5eed0001', time: '2026-01-02T03:04:05Z' };
const t0 = Date.now();

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
}
function cannot(reason) {
  console.log(`test:vm cannot run on this machine: ${reason}`);
  process.exit(2);
}
function step(text) {
  console.log(`.. ${text} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
}
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || r.error?.message || '').trim().slice(-2000)}`);
  }
  return r.stdout;
}

// ---- preconditions -----------------------------------------------------------------------------
if (process.platform !== 'linux' || process.arch !== 'x64') cannot(`needs Linux on x86-64 (this is ${process.platform}/${process.arch})`);
if (process.getuid?.() !== 0) cannot('needs root (debootstrap and chroot build the QEMU root)');
if (!existsSync(STAMP) && spawnSync('debootstrap', ['--version'], { stdio: 'ignore' }).status !== 0) {
  cannot("needs debootstrap to build the QEMU root once (apt-get install debootstrap; .ci/run installs it)");
}

// ---- the QEMU root, kernel and busybox (cached) -------------------------------------------------
function prepareRoot() {
  if (existsSync(STAMP) && readFileSync(STAMP, 'utf8') === STAMP_TEXT) return;
  mkdirSync(CACHE, { recursive: true, mode: 0o700 });
  const partial = `${ROOTFS}.partial`;
  rmSync(partial, { recursive: true, force: true });
  step('debootstrap --variant=minbase trixie (first run only)');
  sh('debootstrap', ['--variant=minbase', 'trixie', partial, MIRROR]);
  writeFileSync(join(partial, 'etc/apt/sources.list'), `deb ${MIRROR} trixie main\ndeb ${MIRROR} trixie-backports main\n`);
  step('apt-get install -t trixie-backports qemu-system-x86 in the root (first run only)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  sh('chroot', [partial, 'apt-get', 'update', '-qq'], { env });
  sh('chroot', [partial, 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', '-t', 'trixie-backports', 'qemu-system-x86'], { env });
  writeFileSync(join(partial, '.nsm-emulator-ready'), STAMP_TEXT);
  rmSync(ROOTFS, { recursive: true, force: true });
  renameSync(partial, ROOTFS);
}

function prepareGuest() {
  const guest = join(CACHE, 'guest');
  if (existsSync(join(guest, 'ready'))) return JSON.parse(readFileSync(join(guest, 'ready'), 'utf8'));
  const debs = join(ROOTFS, 'debs');
  mkdirSync(debs, { recursive: true });
  const kernelPkg = sh('chroot', [ROOTFS, 'apt-cache', 'depends', 'linux-image-amd64'])
    .split('\n')
    .map((l) => /Depends: (linux-image-[0-9][^\s]*-amd64)$/.exec(l.trim())?.[1])
    .find(Boolean);
  if (!kernelPkg) throw new Error('cannot resolve linux-image-amd64 to a kernel package');
  step(`apt-get download ${kernelPkg} busybox-static (first run only)`);
  sh('chroot', [ROOTFS, 'sh', '-c', `cd /debs && apt-get download ${kernelPkg} busybox-static`]);
  const partial = `${guest}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(join(partial, 'x'), { recursive: true });
  for (const f of readdirSync(debs)) if (f.endsWith('.deb')) sh('dpkg-deb', ['-x', join(debs, f), join(partial, 'x')]);
  const x = join(partial, 'x');
  const kver = readdirSync(join(x, 'boot')).find((f) => f.startsWith('vmlinuz-')).slice('vmlinuz-'.length);
  renameSync(join(x, 'boot', `vmlinuz-${kver}`), join(partial, 'vmlinuz'));
  renameSync(join(x, 'usr/bin/busybox'), join(partial, 'busybox'));
  // nsm.ko and whatever it depends on (.modinfo "depends="), in load order.
  const modRoot = join(x, 'usr/lib/modules', kver, 'kernel');
  const index = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ko.xz')) index.set(e.name.slice(0, -6).replace(/-/g, '_'), join(d, e.name));
    }
  };
  walk(modRoot);
  const order = [];
  const load = (name) => {
    const key = name.replace(/-/g, '_');
    if (order.includes(key)) return;
    const file = index.get(key);
    if (!file) throw new Error(`module ${name} is not in ${kernelPkg}`);
    const ko = execFileSync('xz', ['-dc', file], { maxBuffer: 64 << 20 });
    const m = /depends=([^\0]*)\0/.exec(ko.toString('latin1'));
    for (const dep of (m?.[1] ?? '').split(',').filter(Boolean)) load(dep);
    writeFileSync(join(partial, `${key}.ko`), ko);
    order.push(key);
  };
  load('nsm');
  rmSync(x, { recursive: true, force: true });
  const info = { kernel: kernelPkg, kver, modules: order.map((k) => `${k}.ko`) };
  writeFileSync(join(partial, 'ready'), JSON.stringify(info));
  rmSync(guest, { recursive: true, force: true });
  renameSync(partial, guest);
  return info;
}

// ---- the requests the guest sends ---------------------------------------------------------------
const enc = (r) => Buffer.from(encodeRequest(r)).toString('hex');
const extendData = Buffer.from('nsm-emulator vm test: ExtendPCR');
const userData = Buffer.from('user data from the guest');
const nonce = Buffer.from('0123456789abcdef');
const publicKey = Buffer.from('a public key, as bytes');
const REQUESTS = [
  ['DescribeNSM', { type: 'DescribeNSM' }],
  ['DescribePCR 0', { type: 'DescribePCR', index: 0 }],
  ['DescribePCR 16', { type: 'DescribePCR', index: 16 }],
  ['ExtendPCR 16', { type: 'ExtendPCR', index: 16, data: extendData }],
  ['DescribePCR 16 after extend', { type: 'DescribePCR', index: 16 }],
  ['LockPCR 16', { type: 'LockPCR', index: 16 }],
  ['ExtendPCR 16 when locked', { type: 'ExtendPCR', index: 16, data: extendData }],
  ['ExtendPCR 0 (boot-locked)', { type: 'ExtendPCR', index: 0, data: extendData }],
  ['LockPCRs 20', { type: 'LockPCRs', range: 20 }],
  ['DescribePCR 19', { type: 'DescribePCR', index: 19 }],
  ['GetRandom', { type: 'GetRandom' }],
  ['Attestation', { type: 'Attestation', userData, nonce, publicKey }],
  ['DescribePCR 32 (out of range)', { type: 'DescribePCR', index: 32 }],
];
const BENCH_REQUEST = enc({ type: 'DescribePCR', index: 0 });
const BENCH_COUNT = Number(process.env.NSM_VM_BENCH ?? 300);

function initramfs(guest, client) {
  const g = join(CACHE, 'guest');
  const files = [
    { name: 'bin', type: 'dir' },
    { name: 'dev', type: 'dir' },
    { name: 'proc', type: 'dir' },
    { name: 'sys', type: 'dir' },
    { name: 'lib', type: 'dir' },
    { name: 'lib/modules', type: 'dir' },
    { name: 'bin/busybox', type: 'file', data: readFileSync(join(g, 'busybox')), mode: 0o755 },
    { name: 'init', type: 'file', data: readFileSync(join(ROOT, 'test/vm/guest-init.sh')), mode: 0o755 },
    { name: 'nsm-client', type: 'file', data: readFileSync(client), mode: 0o755 },
    { name: 'requests', type: 'file', data: REQUESTS.map(([, r]) => enc(r)).join('\n') + '\n' },
    { name: 'bench-request', type: 'file', data: BENCH_REQUEST + '\n' },
    { name: 'bench-count', type: 'file', data: `${BENCH_COUNT}\n` },
    { name: 'modules.order', type: 'file', data: guest.modules.join('\n') + '\n' },
    ...guest.modules.map((m) => ({ name: `lib/modules/${m}`, type: 'file', data: readFileSync(join(g, m)) })),
  ];
  return newcArchive(files);
}

// ---- run ---------------------------------------------------------------------------------------
function waitForLine(stream, pattern, ms, what) {
  return new Promise((resolveLine, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what}: nothing matching ${pattern} within ${ms} ms`)), ms);
    stream.on('data', (d) => {
      text += d;
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolveLine(m);
      }
    });
  });
}

async function main() {
  try {
    prepareRoot();
  } catch (e) {
    cannot(`preparing the QEMU root failed: ${e.message}`);
  }
  const guest = prepareGuest();
  step(`QEMU root and ${guest.kernel} ready (modules: ${guest.modules.join(', ')})`);
  const client = await buildNative(
    { name: 'nsm-client-static', title: 'the static test client', file: 'nsm-client.c', suffix: '', cflags: ['-static', '-O2', '-pthread'], libs: [] },
    { source: join(ROOT, 'test/native/nsm-client.c') },
  );
  const run = mkdtempSync(join(tmpdir(), 'nsm-vm-'));
  const sock = join(run, 'nsm.sock');
  writeFileSync(join(run, 'initramfs.cpio'), initramfs(guest, client));

  // The server, as a user would start it.
  const bootArgs = ['--seed', BOOT_FLAGS.seed, '--time', BOOT_FLAGS.time];
  const server = spawn(process.execPath, [join(ROOT, 'bin/nsm-emulator.js'), 'vfio-user', '--socket', sock, '--log', ...(process.env.NSM_VM_TRACE ? ['--trace'] : []), ...bootArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let serverLog = '';
  server.stderr.on('data', (d) => (serverLog += d));
  await waitForLine(server.stdout, /unix:.*\n/, 30_000, 'nsm-emulator vfio-user');

  const qemuArgs = [
    '-machine', 'pc', '-accel', 'tcg', '-m', '512', '-smp', '1', '-nodefaults', '-no-user-config', '-display', 'none',
    '-serial', 'stdio', '-no-reboot',
    '-L', join(ROOTFS, 'usr/share/seabios'), '-L', join(ROOTFS, 'usr/share/qemu'),
    '-kernel', join(CACHE, 'guest/vmlinuz'), '-initrd', join(run, 'initramfs.cpio'),
    '-append', 'console=ttyS0 panic=-1 loglevel=4 dyndbg="file drivers/base/dd.c +p"',
    '-device', JSON.stringify({ driver: 'vfio-user-pci', socket: { type: 'unix', path: sock } }),
  ];
  const loader = join(ROOTFS, 'lib64/ld-linux-x86-64.so.2');
  const libs = [join(ROOTFS, 'usr/lib/x86_64-linux-gnu'), join(ROOTFS, 'lib/x86_64-linux-gnu')].join(':');
  step('booting the guest under QEMU (TCG)');
  const bootStart = Date.now();
  const qemu = spawn(loader, ['--library-path', libs, join(ROOTFS, 'usr/bin/qemu-system-x86_64'), ...qemuArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, QEMU_MODULE_DIR: join(ROOTFS, 'usr/lib/x86_64-linux-gnu/qemu') },
  });
  let serial = '';
  let qemuErr = '';
  qemu.stdout.on('data', (d) => (serial += d));
  qemu.stderr.on('data', (d) => (qemuErr += d));
  const exited = new Promise((r) => qemu.once('exit', (code, signal) => r(code ?? signal)));
  const timer = setTimeout(() => qemu.kill('SIGKILL'), Number(process.env.NSM_VM_TIMEOUT_MS ?? 300_000));
  const qemuStatus = await exited;
  clearTimeout(timer);
  const guestSeconds = (Date.now() - bootStart) / 1000;
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  writeFileSync(join(run, 'serial.log'), serial);
  writeFileSync(join(run, 'server.log'), serverLog);
  writeFileSync(join(run, 'qemu.stderr'), qemuErr);
  step(`guest ran for ${guestSeconds.toFixed(1)} s; QEMU exited with ${qemuStatus}`);

  // ---- checks ----------------------------------------------------------------------------------
  const marker = (name) => new RegExp(`^@@ ${name} ?(.*)$`, 'm').exec(serial)?.[1]?.trim();
  const between = (a, b) => {
    const m = new RegExp(`@@ ${a}\\r?\\n([\\s\\S]*?)@@ ${b}`).exec(serial);
    return m ? m[1].split(/\r?\n/).map((l) => l.trim()).filter(Boolean) : null;
  };
  check('QEMU 11 ran the guest to the end of its script', marker('done') !== undefined, marker('done') === undefined ? `QEMU ${qemuStatus}: ${qemuErr.trim().slice(-400)}` : '');
  check('the guest kernel booted', marker('booted') !== undefined, marker('booted') ?? '');
  check('nsm.ko loaded without error', marker('booted') !== undefined && !/@@ insmod-failed/.test(serial));
  check('/dev/nsm appeared, a character device of mode 666', marker('devnsm') === 'character special file 666', marker('devnsm') ?? 'no marker');
  const dmesg = between('dmesg-begin', 'dmesg-end') ?? [];
  const probe = dmesg.filter((l) => /nsm/.test(l));
  check('dmesg shows the nsm driver probing the virtio device', probe.some((l) => /probing driver nsm|driver_bound.*nsm|bound to device|nsm.*virtio/.test(l)), probe.slice(0, 3).join(' | ') || dmesg.slice(0, 3).join(' | '));
  check('the kernel picked nsm-hwrng as its hardware RNG', marker('rng_current') === 'nsm-hwrng', marker('rng_current') ?? '');

  // The server log: every exchange and reset, in order.
  const events = serverLog
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const exchanges = events.filter((e) => e.requestHex !== undefined);
  const hwrng = marker('hwrng') ?? '';
  check(
    'a /dev/hwrng read returned 32 bytes of a GetRandom answer the device gave',
    hwrng.length === 64 && exchanges.some((e) => e.requestHex === enc({ type: 'GetRandom' }) && e.responseHex.includes(hwrng)),
    hwrng.length ? `${hwrng.slice(0, 16)}...` : 'no bytes',
  );

  const lines = between('client-begin', 'client-end') ?? [];
  const answers = lines.filter((l) => /^(ok|err) /.test(l));
  check(`the guest client got ${REQUESTS.length} answers through the nsm driver`, answers.length === REQUESTS.length && answers.every((a) => a.startsWith('ok ')), answers.filter((a) => !a.startsWith('ok ')).join(', '));
  const got = answers.map((a) => a.split(' ')[2] ?? '');
  // Each answer is byte for byte what the server sent for that request.
  const clientRequests = REQUESTS.map(([, r]) => enc(r));
  let k = 0;
  const served = [];
  for (const e of exchanges) if (k < clientRequests.length && e.requestHex === clientRequests[k] && !served.includes(e)) served[k++] = e;
  check('every answer the guest read is byte-identical to what the device sent', served.length === REQUESTS.length && served.every((e, i) => e.responseHex === got[i]));

  // The driver's errno for faulty calls and for arguments and buffers around guard pages: the
  // lines the shim and supervisor tests expect (test/native/driver-errno.json), here from the real driver.
  const driverErrno = JSON.parse(readFileSync(join(ROOT, 'test/native/driver-errno.json'), 'utf8'));
  for (const mode of ['errors', 'faults']) {
    const out = between(`${mode}-begin`, `${mode}-end`) ?? [];
    const want = driverErrno[mode];
    const diff = want.map((l, i) => (out[i] === l ? null : `${l} != ${out[i] ?? '(none)'}`)).filter(Boolean);
    check(`nsm-client ${mode}: the guest's nsm driver gives the errno lines the shim and supervisor tests expect`, out.length === want.length && diff.length === 0, diff.slice(0, 3).join('; ') || (out.length !== want.length ? `${out.length} lines` : ''));
  }

  // Replay the whole sequence (driver probe resets, hwrng reads, client requests) on a fresh in-process device.
  const replay = new NsmDevice(await deviceOptionsFromFlags(BOOT_FLAGS));
  let mismatches = 0;
  for (const e of events) {
    if (e.event === 'reset') replay.reset();
    else if (e.requestHex !== undefined) {
      const r = Buffer.from(await replay.handleRaw(Buffer.from(e.requestHex, 'hex'))).toString('hex');
      if (r !== e.responseHex) mismatches++;
    }
  }
  check(`all ${exchanges.length} exchanges (hwrng and client) are byte-identical to the in-process device replaying them`, exchanges.length > 0 && mismatches === 0, `${mismatches} differ`);

  const resp = got.map((h) => {
    try {
      return decodeResponse(Buffer.from(h, 'hex'));
    } catch {
      return { type: 'undecodable' };
    }
  });
  const byName = Object.fromEntries(REQUESTS.map(([n], i) => [n, resp[i]]));
  const d = byName['DescribeNSM'];
  check('DescribeNSM: version 1, SHA384, PCRs 0-15 locked at boot', d?.type === 'DescribeNSM' && d.versionMajor === 1 && d.digest === 'SHA384' && JSON.stringify(d.lockedPcrs) === JSON.stringify([...Array(16).keys()]), JSON.stringify(d ?? {}).slice(0, 160));
  check('DescribePCR 0: locked', byName['DescribePCR 0']?.lock === true);
  const before = byName['DescribePCR 16']?.data;
  const expected = before && createHash('sha384').update(Buffer.from(before)).update(extendData).digest('hex');
  check('ExtendPCR 16 gives SHA-384(old || data) (node:crypto)', expected !== undefined && Buffer.from(byName['ExtendPCR 16']?.data ?? []).toString('hex') === expected);
  check('DescribePCR 16 after the extension reads the new value, unlocked', Buffer.from(byName['DescribePCR 16 after extend']?.data ?? []).toString('hex') === expected && byName['DescribePCR 16 after extend']?.lock === false);
  check('LockPCR 16 succeeds; extending it then is ReadOnlyIndex', byName['LockPCR 16']?.type === 'LockPCR' && byName['ExtendPCR 16 when locked']?.code === 'ReadOnlyIndex', byName['ExtendPCR 16 when locked']?.code ?? '');
  check('ExtendPCR 0 is ReadOnlyIndex (locked at boot)', byName['ExtendPCR 0 (boot-locked)']?.code === 'ReadOnlyIndex');
  check('LockPCRs 20 locks PCR 19', byName['LockPCRs 20']?.type === 'LockPCRs' && byName['DescribePCR 19']?.lock === true);
  check('GetRandom returns 256 bytes', byName['GetRandom']?.random?.length === 256);
  check('DescribePCR 32 is InvalidIndex', byName['DescribePCR 32 (out of range)']?.code === 'InvalidIndex', byName['DescribePCR 32 (out of range)']?.code ?? '');
  let verified = null;
  try {
    verified = await verifyAttestationDocument(byName['Attestation'].document, {
      root: readFileSync(join(ROOT, 'certs/root.pem'), 'utf8'),
      time: 'document',
      expectedNonce: nonce,
      expectedUserData: userData,
      expectedPublicKey: publicKey,
    });
  } catch (e) {
    verified = e;
  }
  check('the attestation document verifies against the test root (nonce, user data, public key)', verified && !(verified instanceof Error), verified instanceof Error ? verified.message : '');
  if (verified && !(verified instanceof Error)) {
    const pcr16 = verified.pcrs?.get?.(16) ?? verified.document?.pcrs?.get?.(16);
    check('the attested PCR 16 is the extended value', pcr16 !== undefined && Buffer.from(pcr16).toString('hex') === expected);
  }

  // ---- speed: guest ioctl round trips against the in-process device -----------------------------
  const bench = marker('bench');
  const [n, b0, b1, done] = (bench ?? '').split(' ');
  const guestRate = Number(n) / (Number(b1) - Number(b0));
  check(`guest benchmark completed ${n} DescribePCR ioctls`, done === 'done' && Number.isFinite(guestRate), bench ?? 'no marker');
  const local = new NsmDevice(await deviceOptionsFromFlags(BOOT_FLAGS));
  const req = Buffer.from(BENCH_REQUEST, 'hex');
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < 1000) {
    await local.handleRaw(req);
    count++;
  }
  const localRate = count / ((performance.now() - start) / 1000);
  console.log(
    `bench: guest ioctl round trips ${guestRate.toFixed(0)}/s (QEMU TCG, vfio-user, DMA by message) vs in-process handleRaw ${localRate.toFixed(0)}/s: ratio ${(guestRate / localRate).toFixed(5)} (1 : ${(localRate / guestRate).toFixed(0)})`,
  );

  if (process.env.NSM_VM_KEEP) console.log(`run directory kept: ${run}`);
  else rmSync(run, { recursive: true, force: true });
  console.log(`test:vm took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL test:vm stopped: ${e.message}`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
