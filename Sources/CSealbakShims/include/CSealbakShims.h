#ifndef CSEALBAKSHIMS_H
#define CSEALBAKSHIMS_H
#include <stddef.h>
#include <stdint.h>
/* Linux functions and macros Swift's Glibc module does not export (they need _GNU_SOURCE). */

/* syncfs(2). */
int sealbak_syncfs(int fd);

/* open(dir, O_TMPFILE | O_RDWR, mode): an unnamed file in dir that vanishes if never linked. -1 + errno on failure
   (EOPNOTSUPP/EISDIR/EINVAL when the file system has no O_TMPFILE: callers fall back to a named temp file). */
int sealbak_open_tmpfile(const char *dir, unsigned int mode);
/// glibc's mallopt(M_ARENA_MAX, count): at most `count` malloc arenas (no-op elsewhere).
int sealbak_limit_malloc_arenas(int count);

/* Gives the unnamed file fd the name path (linkat through /proc/self/fd). Fails with EEXIST if path exists. */
int sealbak_link_tmpfile(int fd, const char *path);

/* copy_file_range(2) of count bytes from in_fd at in_off to out_fd at its current position; loops until done.
   Returns 0, or -1 + errno (ENOSYS/EXDEV/EINVAL: callers fall back to read/write). Clones extents where the
   file system can (btrfs, XFS), so a header rewrite does not copy the data at all there. */
int sealbak_copy_range(int in_fd, int64_t in_off, int out_fd, int64_t count);
#endif

#ifndef CSEALBAKSHIMS_REOPEN
#define CSEALBAKSHIMS_REOPEN
/* A new read-only descriptor, with its own file offset at 0, for the file open as fd (via /proc/self/fd). */
int sealbak_reopen_read(int fd);
#endif

#ifndef CSEALBAKSHIMS_CLONE
#define CSEALBAKSHIMS_CLONE
/* ioctl(dst, FICLONE, src): dst becomes a copy-on-write clone of src (btrfs, XFS). -1 + errno elsewhere. */
int sealbak_clone_file(int src_fd, int dst_fd);
/// pipe2(O_CLOEXEC): both ends close on exec, so children see only the descriptors they are given.
int sealbak_pipe_cloexec(int fds[2]);
/// posix_spawn_file_actions_addclosefrom_np(actions, 3) where glibc has it (2.34+): the child gets no descriptor
/// it inherited from sealbak's parent (a daemon started by a hook would otherwise keep them open). 0 elsewhere.
int sealbak_spawn_close_inherited(void *actions);

/// Atomically swaps two paths (renameat2 RENAME_EXCHANGE); -1 with errno ENOSYS/EINVAL where unsupported.
int sealbak_exchange(const char *a, const char *b);

/// renameat2(RENAME_NOREPLACE): fails with EEXIST instead of replacing newpath; -1 + EINVAL/ENOSYS where the
/// file system or kernel cannot (callers must not fall back to a plain rename without checking).
int sealbak_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// renameat2(RENAME_EXCHANGE) relative to directory descriptors: both names must exist.
int sealbak_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE): starts writing the file's dirty pages back without waiting
/// (a later fsync then finds most of them written). 0, or -1 + errno (ENOSYS elsewhere: harmless to ignore).
int sealbak_start_writeback(int fd);
/// Starts write-back of `length` bytes at `offset` (0: to the end) without waiting for it; Linux only.
int sealbak_start_writeback_range(int fd, long long offset, long long length);

/// 1 when the count bytes at p are all zero (a hole can be left instead of writing them), else 0.
int sealbak_is_zero(const void *p, size_t count);

#endif
