/**
 * AWS Nitro Enclaves Root-G1, the trust anchor of every real attestation document (commercial
 * partitions). Public data, embedded so that verifiers and the inspector page can pin it
 * without a file: valid 2019-10-28T13:28:05Z to 2049-10-28T14:28:05Z, P-384, SHA-256 of the
 * DER 641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b.
 * @module
 */

/** The AWS Nitro Enclaves Root-G1 certificate, PEM. */
export const AWS_NITRO_ROOT_G1_PEM: string =
  '-----BEGIN CERTIFICATE-----\n' +
  'MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL\n' +
  'MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD\n' +
  'VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4\n' +
  'MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL\n' +
  'DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG\n' +
  'BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb\n' +
  '48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE\n' +
  'h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF\n' +
  'R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC\n' +
  'MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW\n' +
  'rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N\n' +
  'IwLz3/Y=\n' +
  '-----END CERTIFICATE-----\n';
