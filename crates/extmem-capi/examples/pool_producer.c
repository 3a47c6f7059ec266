/*
 * pool_producer: hands sub-allocations of an exportable pool to a consumer
 * (docs/src/protocol.md §5), using only include/extmem.h.
 *
 *   pool_producer [--count N] [--socket PATH]
 *
 * It makes a context of extmem's own (validation on), a pool of 4 MiB blocks, listens
 * (printing "LISTENING <path>"), and hands over N sub-allocations, buffers and images in
 * turn: each is shared (its block with its fd the first time only, then metadata), held by
 * the consumer, released by it, and only then destroyed, so its range is reused. Works with
 * `extmem peer --pool --validate`. Exit 0 and "PASS" when every hand-off was held and
 * released, the ranges were reused, and no validation message was seen.
 */
#include "extmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EM(call)                                                                          \
    do {                                                                                  \
        extmem_status s_ = (call);                                                        \
        if (s_ != EXTMEM_OK) {                                                            \
            fprintf(stderr, "FAIL: %s: %s: %s\n", #call, extmem_status_name(s_),          \
                    extmem_last_error_message());                                         \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

int main(int argc, char **argv) {
    int count = 6;
    const char *socket_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) count = atoi(argv[++i]);
        else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) socket_path = argv[++i];
        else {
            fprintf(stderr, "usage: pool_producer [--count N] [--socket PATH]\n");
            return 2;
        }
    }
    extmem_context_options co;
    memset(&co, 0, sizeof co);
    co.struct_size = sizeof co;
    co.validation = VK_TRUE;
    co.device_index = -1;
    extmem_context *ctx = NULL;
    EM(extmem_context_create(&co, &ctx));
    extmem_pool_options po = {sizeof po, 4u << 20};
    extmem_pool *pool = NULL;
    EM(extmem_pool_create(ctx, &po, &pool));

    extmem_listener *listener = NULL;
    EM(extmem_listener_bind(socket_path, &listener));
    printf("LISTENING %s\n", extmem_listener_path(listener));
    fflush(stdout);
    extmem_channel *ch = NULL;
    EM(extmem_listener_accept(listener, 60ull * 1000000000ull, NULL, &ch));
    extmem_pool_link *link = NULL;
    EM(extmem_pool_link_create(pool, ch, &link));

    extmem_resource_desc buffer, image;
    memset(&buffer, 0, sizeof buffer);
    buffer.kind = EXTMEM_RESOURCE_BUFFER;
    buffer.buffer.size = 256 * 1024;
    buffer.buffer.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    memset(&image, 0, sizeof image);
    image.kind = EXTMEM_RESOURCE_IMAGE;
    image.image = (extmem_image_desc){VK_FORMAT_R8G8B8A8_UNORM, 128, 128, 1, 1, 1, VK_IMAGE_TILING_OPTIMAL,
                                      VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT};
    uint64_t first_offset[2] = {UINT64_MAX, UINT64_MAX};
    int reused = 0;
    for (int i = 0; i < count; i++) {
        extmem_pooled *p = NULL;
        EM(extmem_pool_allocate(pool, i % 2 ? &image : &buffer, &p));
        extmem_pooled_desc d;
        EM(extmem_pooled_get_desc(p, &d));
        if (first_offset[i % 2] == UINT64_MAX) first_offset[i % 2] = d.handle.offset;
        else reused += d.handle.offset == first_offset[i % 2];
        EM(extmem_pool_link_share(link, p));
        EM(extmem_pool_link_wait_released(link, p));
        printf("%s in block %u at %llu (generation %llu): held and released\n", i % 2 ? "image" : "buffer",
               d.handle.block, (unsigned long long)d.handle.offset, (unsigned long long)d.handle.generation);
        extmem_pooled_destroy(p);
    }
    EM(extmem_channel_bye(ch));
    extmem_pool_link_destroy(link);
    extmem_channel_destroy(ch);
    extmem_listener_destroy(listener);
    extmem_pool_destroy(pool);
    extmem_context_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EM(extmem_context_get_info(ctx, &info));
    extmem_context_destroy(ctx);
    if (info.validation_messages != 0 || extmem_live_handle_count() != 0) {
        fprintf(stderr, "FAIL: %u validation message(s), %llu handle(s) left\n", info.validation_messages,
                (unsigned long long)extmem_live_handle_count());
        return 1;
    }
    if (count > 2 && reused != count - 2) {
        fprintf(stderr, "FAIL: %d of %d ranges reused\n", reused, count - 2);
        return 1;
    }
    printf("PASS: %d pooled hand-offs\n", count);
    return 0;
}
