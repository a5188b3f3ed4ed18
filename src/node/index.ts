/**
 * nsm-emulator/node: the Node-only edges of the library (sockets, files, the native shim).
 * The runtime-agnostic core is the package's main entry.
 * @module
 */
export { NsmServer, AddressInUseError, type NsmEndpoint, type NsmExchange, type NsmServerEvent, type NsmServerOptions } from './server.js';
export { FrameReader, encodeFrame, FRAME_HEADER_SIZE, FRAME_BODY_MAX, FRAME_LENGTH_CAP, type FrameEvent } from './framing.js';
export { buildShim, shimSourcePath, defaultShimCacheDir, ShimBuildError, SHIM_ENV, SHIM_CFLAGS, SHIM_LIBS, SHIM_PROGRAM, type ShimBuildOptions } from './shim-build.js';
export { buildNative, nativeDir, defaultNativeCacheDir, NativeBuildError, type NativeProgram, type NativeBuildOptions } from './native-build.js';
export { buildSupervisor, probeSupervisor, supervisorCommand, SUPERVISOR_PROGRAM, type SupervisorProbe } from './supervisor.js';
export { shimEnvironment } from './shim-env.js';
export type { NativeSockets, NativeSocketsOptions } from './native-socket.js';
export type { ServerSocket } from './server-socket.js';
export { fileSource, measureEifFile, bootProfileFromEifFile, nodeSha384, nodeCrc32 } from './eif-file.js';
export { nodeDeviceSha384 } from './device-hash.js';
export { nodeCryptoBackend } from './crypto-backend.js';
export { nodeEcdsaVerifier } from './ecdsa-verifier.js';
export { fileChainStore, defaultChainCacheDir, ChainCacheError, CHAIN_CACHE_ENV, type FileChainStoreOptions } from './chain-cache.js';
export { eifBootOptions, EifBootError, type EifBootRequest } from './eif-boot.js';
export { loadCaDir, writeCaDir, readCaDirPem, attesterFromCaDir, nodeAttester, caManifest, caModuleSource, CaDirError, CA_MANIFEST_FORMAT, CA_WARNING, type CaManifest } from './ca-dir.js';
export { InspectorServer, InspectorServerError, type InspectorServerOptions } from './inspector-server.js';
export { VfioUserServer, buildRelay, RELAY_PROGRAM, type VfioUserServerOptions } from './vfio-user-server.js';
export { KmsHttpServer, type KmsServerOptions } from './kms-server.js';
export { loadKmsState, saveKmsState, prepareKmsStateDir, KmsStateError, KMS_STATE_FILE, KMS_STATE_MAX_BYTES } from './kms-state.js';
export { parseAuthorization, verifySigV4, SigV4Error, SIGV4_SKEW_MS, type SigV4Credential } from './sigv4.js';
