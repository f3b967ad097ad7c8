#ifndef CZSTD_SHIM_H
#define CZSTD_SHIM_H
// The experimental parts of libzstd's API that sealbak uses, which libzstd exports: ZSTD_c_forceAttachDict (a frame
// compressed with a dictionary searches the dictionary's tables in place instead of copying them per frame) and
// ZDICT_trainFromBuffer_fastCover with fixed parameters (the stable ZDICT_trainFromBuffer searches parameters and
// takes seconds).
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#endif
