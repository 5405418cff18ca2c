// SPDX-License-Identifier: MIT
/* The version of the library that is loaded, which may differ from the headers used. */
#include <dmalog/version.h>

const char *dmalog_version(void)
{
	return DMALOG_VERSION_STRING;
}

unsigned int dmalog_version_number(void)
{
	return DMALOG_VERSION_NUMBER;
}
