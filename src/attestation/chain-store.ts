/**
 * A store for the derived regional and zonal certificates, so that a new process need not sign
 * them again (instance certificates are per parent instance, usually a random id, and stay in
 * memory).
 *
 * The regional, zonal and instance certificates are a function of the root key, the schedule
 * slot (and the parent instance), except for their signatures when the signer is randomized
 * (chain-schedule.ts). Making one costs a public-key derivation and a signature; a command-line
 * run that makes one document would spend most of its time on the three intermediates. A
 * {@link ChainStore} keeps, per certificate, the two things that cannot be recomputed cheaply:
 * the public key and the signature. Everything else is rebuilt from the root on every use, so
 * the TBSCertificate is always exactly what this version would sign.
 *
 * An entry is checked before use, and any entry that fails is ignored (the certificate is made
 * and stored again) so a corrupt, truncated or foreign file never changes the output: it must be
 * exactly {@link CHAIN_ENTRY_SIZE} bytes, and its MAC, an HMAC-SHA-384 keyed with a secret
 * derived from the root's private key over the store key, the rebuilt TBSCertificate and the
 * signature, must match. So an entry was written by a holder of the root key for exactly this
 * certificate (same root, region, slot, profile and signer kind); for a deterministic (RFC 6979)
 * signer that makes the cached signature the one signing would produce. The check does not
 * recompute the public key from the private one (that is the cost being saved): whoever can
 * write to the store and holds the root key can make documents that fail to verify, which they
 * can do anyway with that key.
 *
 * Stores are given to an attester through `CaAttesterOptions.chainStore`; nsm-emulator/node has
 * a file-backed one (the CLI's default).
 * @module
 */

/**
 * Bytes by key. Keys are printable ASCII (`random/<32 hex>/instance/i-.../123`) but may include
 * user-chosen text (the parent instance id): a store that maps them to file names must encode
 * them. Either method may be synchronous or asynchronous. A store should not throw (report your
 * own failures); if it does, a `get` counts as a miss and a `put` as not stored.
 */
export interface ChainStore {
  /** The bytes last stored under `key`, or null. */
  get(key: string): Uint8Array | null | Promise<Uint8Array | null>;
  /** Stores `value` under `key`, replacing what was there. */
  put(key: string, value: Uint8Array): void | Promise<void>;
}

/** MAC (48) || uncompressed public key (97) || signature r || s (96). */
export const CHAIN_ENTRY_SIZE = 48 + 97 + 96;

/** A stored certificate's parts. */
export interface ChainEntry {
  readonly mac: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** Splits an entry; null unless it has exactly the entry's size and an uncompressed point. */
export function decodeChainEntry(bytes: Uint8Array | null | undefined): ChainEntry | null {
  if (!(bytes instanceof Uint8Array) || bytes.length !== CHAIN_ENTRY_SIZE || bytes[48] !== 0x04) return null;
  return { mac: bytes.subarray(0, 48), publicKey: bytes.subarray(48, 145), signature: bytes.subarray(145) };
}

/** Joins an entry's parts. */
export function encodeChainEntry(entry: ChainEntry): Uint8Array {
  const out = new Uint8Array(CHAIN_ENTRY_SIZE);
  out.set(entry.mac, 0);
  out.set(entry.publicKey, 48);
  out.set(entry.signature, 145);
  return out;
}

/** What the MAC covers: the store key, a zero byte, the TBSCertificate, the signature. */
export function chainEntryMacInput(key: string, tbs: Uint8Array, signature: Uint8Array): Uint8Array {
  const k = new TextEncoder().encode(key);
  const out = new Uint8Array(k.length + 1 + tbs.length + signature.length);
  out.set(k, 0);
  out.set(tbs, k.length + 1);
  out.set(signature, k.length + 1 + tbs.length);
  return out;
}

/** Constant-time comparison of two MACs. */
export function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
