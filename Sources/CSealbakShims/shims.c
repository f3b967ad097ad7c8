#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "CSealbakShims.h"

int sealbak_syncfs(int fd) {
#ifdef __linux__
    return syncfs(fd);
#else
    (void)fd;
    sync();
    return 0;
#endif
}

int sealbak_open_tmpfile(const char *dir, unsigned int mode) {
#ifdef O_TMPFILE
    return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
#else
    (void)dir; (void)mode;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

int sealbak_link_tmpfile(int fd, const char *path) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

int sealbak_copy_range(int in_fd, int64_t in_off, int out_fd, int64_t count) {
#ifdef __linux__
    off_t off = (off_t)in_off;
    while (count > 0) {
        ssize_t n = copy_file_range(in_fd, &off, out_fd, NULL, (size_t)(count > (1 << 30) ? (1 << 30) : count), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) { errno = EIO; return -1; }  /* source shorter than expected */
        count -= n;
    }
    return 0;
#else
    (void)in_fd; (void)in_off; (void)out_fd; (void)count;
    errno = ENOSYS;
    return -1;
#endif
}

int sealbak_reopen_read(int fd) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return open(proc, O_RDONLY | O_CLOEXEC);
}

#ifdef __linux__
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

int sealbak_clone_file(int src_fd, int dst_fd) {
#if defined(__linux__) && defined(FICLONE)
    return ioctl(dst_fd, FICLONE, src_fd);
#else
    (void)src_fd; (void)dst_fd;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

int sealbak_pipe_cloexec(int fds[2]) {
#ifdef __linux__
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

int sealbak_spawn_close_inherited(void *actions) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, 3);
#else
    (void)actions;
    return 0;
#endif
}

int sealbak_exchange(const char *a, const char *b) {
#ifdef __linux__
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    (void)a; (void)b;
    errno = ENOSYS;
    return -1;
#endif
}

int sealbak_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
#ifdef __linux__
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
#else
    (void)olddirfd; (void)oldpath; (void)newdirfd; (void)newpath;
    errno = ENOSYS;
    return -1;
#endif
}

int sealbak_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
#ifdef __linux__
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_EXCHANGE);
#else
    (void)olddirfd; (void)oldpath; (void)newdirfd; (void)newpath;
    errno = ENOSYS;
    return -1;
#endif
}

int sealbak_is_zero(const void *p, size_t count) {
    const unsigned char *b = p;
    /* Check the first 16 bytes, then compare the buffer with itself shifted by 16: all zero iff both hold. */
    size_t head = count < 16 ? count : 16;
    for (size_t i = 0; i < head; i++) if (b[i]) return 0;
    return count <= 16 || memcmp(b, b + 16, count - 16) == 0;
}

int sealbak_start_writeback(int fd) {
    return sealbak_start_writeback_range(fd, 0, 0);
}

int sealbak_start_writeback_range(int fd, long long offset, long long length) {
#ifdef __linux__
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    (void)offset;
    (void)length;
    errno = ENOSYS;
    return -1;
#endif
}

int sealbak_limit_malloc_arenas(int count) {
#ifdef __GLIBC__
    return mallopt(M_ARENA_MAX, count);
#else
    (void)count;
    return 0;
#endif
}
