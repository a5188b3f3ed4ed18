/**
 * A minimal writer of the "newc" cpio format the Linux kernel unpacks as an initramfs: regular
 * files, directories and symlinks, owned by root, then the TRAILER!!! entry. Enough to build the
 * test guest's initramfs without a cpio binary.
 */

const encoder = new TextEncoder();

function hex8(n) {
  return n.toString(16).padStart(8, '0');
}

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

/**
 * @param {Array<{ name: string, type: 'file' | 'dir' | 'symlink', data?: Uint8Array | string, target?: string, mode?: number }>} entries
 * @returns {Uint8Array}
 */
export function newcArchive(entries) {
  const parts = [];
  let ino = 1;
  const add = (name, mode, data) => {
    const nameBytes = encoder.encode(name + '\0');
    const header =
      '070701' +
      hex8(ino++) +
      hex8(mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8(1) + // nlink
      hex8(0) + // mtime
      hex8(data.length) +
      hex8(0) + // devmajor
      hex8(0) + // devminor
      hex8(0) + // rdevmajor
      hex8(0) + // rdevminor
      hex8(nameBytes.length) +
      hex8(0); // check
    parts.push(encoder.encode(header), nameBytes, new Uint8Array(pad4(110 + nameBytes.length)), data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    if (e.type === 'dir') add(e.name, 0o040000 | (e.mode ?? 0o755), new Uint8Array(0));
    else if (e.type === 'symlink') add(e.name, 0o120000 | 0o777, encoder.encode(e.target));
    else add(e.name, 0o100000 | (e.mode ?? 0o644), typeof e.data === 'string' ? encoder.encode(e.data) : e.data);
  }
  add('TRAILER!!!', 0, new Uint8Array(0));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
