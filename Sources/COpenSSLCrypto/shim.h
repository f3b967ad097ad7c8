#ifndef COPENSSLCRYPTO_SHIM_H
#define COPENSSLCRYPTO_SHIM_H
/* SHA-256 (OpenSSL uses the CPU's SHA extensions, about 6x libsodium's here) and MD5 for S3's Content-MD5. */
#include <openssl/evp.h>
#endif
