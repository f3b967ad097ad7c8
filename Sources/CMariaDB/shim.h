#ifndef SEALBAK_CMARIADB_SHIM_H
#define SEALBAK_CMARIADB_SHIM_H
// MariaDB Connector/C (Debian libmariadb-dev; pkg-config libmariadb puts include/mariadb on the path).
// It speaks to MySQL and MariaDB servers alike.
#include <mysql.h>
#include <errmsg.h>
#endif
