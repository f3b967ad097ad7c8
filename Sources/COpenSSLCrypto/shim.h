#ifndef COPENSSLCRYPTO_SHIM_H
#define COPENSSLCRYPTO_SHIM_H
/* Only SHA-256 is used: OpenSSL's implementation uses the CPU's SHA extensions (about 6x libsodium's here). */
#include <openssl/evp.h>
#endif
