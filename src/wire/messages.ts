/**
 * The NSM requests and responses as plain data: the variants of nsm-api's `Request` and
 * `Response` enums, with fields in the Rust declaration order.
 * @module
 */
import type { ErrorCode } from '../device/error-code.js';

export type NsmRequest =
  | { readonly type: 'DescribePCR'; readonly index: number }
  | { readonly type: 'ExtendPCR'; readonly index: number; readonly data: Uint8Array }
  | { readonly type: 'LockPCR'; readonly index: number }
  | { readonly type: 'LockPCRs'; readonly range: number }
  | { readonly type: 'DescribeNSM' }
  | {
      readonly type: 'Attestation';
      /** null when absent; an empty byte string stays distinct from null. */
      readonly userData: Uint8Array | null;
      readonly nonce: Uint8Array | null;
      readonly publicKey: Uint8Array | null;
    }
  | { readonly type: 'GetRandom' };

export interface NsmDescription {
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly versionPatch: number;
  readonly moduleId: string;
  readonly maxPcrs: number;
  readonly lockedPcrs: readonly number[];
  readonly digest: 'SHA256' | 'SHA384' | 'SHA512';
}

export type NsmResponse =
  | { readonly type: 'DescribePCR'; readonly lock: boolean; readonly data: Uint8Array }
  | { readonly type: 'ExtendPCR'; readonly data: Uint8Array }
  | { readonly type: 'LockPCR' }
  | { readonly type: 'LockPCRs' }
  | ({ readonly type: 'DescribeNSM' } & NsmDescription)
  | { readonly type: 'Attestation'; readonly document: Uint8Array }
  | { readonly type: 'GetRandom'; readonly random: Uint8Array }
  | { readonly type: 'Error'; readonly code: ErrorCode };

export type NsmRequestType = NsmRequest['type'];
