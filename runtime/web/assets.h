/* runtime/web/assets.h -- the dashboard's files, embedded at build time. */
#ifndef WEIR_WEB_ASSETS_H
#define WEIR_WEB_ASSETS_H

#include <stddef.h>

typedef struct weir_web_asset {
    const char *path;           /* "/index.html" */
    const char *content_type;
    const char *data;
    size_t      len;
} weir_web_asset_t;

/* Terminated by an entry whose path is NULL. */
extern const weir_web_asset_t weir_web_assets[];

#endif
