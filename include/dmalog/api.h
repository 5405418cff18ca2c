/* SPDX-License-Identifier: MIT */
/* Symbol visibility: the library is built with -fvisibility=hidden; DMALOG_API exports. */
#ifndef DMALOG_API_H
#define DMALOG_API_H

#define DMALOG_API __attribute__((visibility("default")))

#endif
