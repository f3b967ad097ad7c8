#ifndef CSEALBAKSHIMS_H
#define CSEALBAKSHIMS_H
/* syncfs(2) is a GNU extension that Swift's Glibc module does not export. */
int sealbak_syncfs(int fd);
#endif
