/*
 * api_test: the C ABI from a C11 program, written from include/extmem.h alone.
 *
 * Misuse is refused with a status and a message (NULL and destroyed handles, wrong-kind
 * handles, short struct_size, a pipe sent as memory, forged descriptors); memory crosses two
 * contexts of extmem's own (export, checked import, bytes both ways); a pool hands a buffer
 * to an importer on another thread over a channel; nothing is left: no live handle, no
 * leaked descriptor, no validation message. Prints "PASS" and exits 0 only then.
 */
#include "extmem.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond, ...)                                                  \
    do {                                                                   \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL line %d: %s: ", __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, " (last error: %s)\n", extmem_last_error_message()); \
        }                                                                  \
    } while (0)

#define OK(call)                                                           \
    do {                                                                   \
        extmem_status s_ = (call);                                         \
        if (s_ != EXTMEM_OK) {                                             \
            fprintf(stderr, "FAIL line %d: %s returned %s: %s\n", __LINE__, #call, \
                    extmem_status_name(s_), extmem_last_error_message());  \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static int has(const char *text, const char *part) { return strstr(text, part) != NULL; }

static extmem_memory_options buffer_options(uint64_t size) {
    extmem_memory_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.resource.kind = EXTMEM_RESOURCE_BUFFER;
    o.resource.buffer.size = size;
    o.resource.buffer.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    o.handle_type = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
    o.dedicated = EXTMEM_DEDICATED_ALWAYS;
    return o;
}

static void misuse(extmem_context *ctx) {
    extmem_memory *m = (extmem_memory *)1;
    EXPECT(extmem_memory_create(NULL, NULL, &m) == EXTMEM_ERROR_INVALID_ARGUMENT, "NULL options");
    EXPECT(m == NULL, "out is NULL after a failure");
    EXPECT(has(extmem_last_error_message(), "extmem_memory_create: options is NULL"), "the message names it");
    extmem_memory_options o = buffer_options(4096);
    EXPECT(extmem_memory_create(NULL, &o, &m) == EXTMEM_ERROR_INVALID_HANDLE, "NULL context");
    EXPECT(has(extmem_last_error_message(), "extmem_context is NULL"), "named");
    EXPECT(extmem_memory_create(ctx, &o, NULL) == EXTMEM_ERROR_INVALID_ARGUMENT, "NULL out");
    o.struct_size = 4;
    EXPECT(extmem_memory_create(ctx, &o, &m) == EXTMEM_ERROR_INVALID_ARGUMENT, "short struct_size");
    EXPECT(has(extmem_last_error_message(), "struct_size is 4"), "named");
    o = buffer_options(4096);
    o.resource.kind = 7;
    EXPECT(extmem_memory_create(ctx, &o, &m) == EXTMEM_ERROR_INVALID_ARGUMENT, "unknown kind");
    o = buffer_options(4096);
    o.handle_type = (VkExternalMemoryHandleTypeFlagBits)0x3;
    EXPECT(extmem_memory_create(ctx, &o, &m) == EXTMEM_ERROR_INVALID_ARGUMENT, "two handle type bits");
    o = buffer_options(0);
    EXPECT(extmem_memory_create(ctx, &o, &m) == EXTMEM_ERROR_INVALID_DESCRIPTION, "a buffer of 0 bytes");
    EXPECT(has(extmem_last_error_message(), "size"), "names the size");

    /* A destroyed handle, and one of another kind, are refused, never dereferenced. */
    o = buffer_options(4096);
    OK(extmem_memory_create(ctx, &o, &m));
    extmem_memory_destroy(m);
    EXPECT(!has(extmem_last_error_message(), "not a live"), "the first destroy works");
    extmem_memory_destroy(m);
    EXPECT(has(extmem_last_error_message(), "extmem_memory is not a live handle"), "a second destroy is refused");
    uint64_t size = 0;
    EXPECT(extmem_memory_data_size(m, &size) == EXTMEM_ERROR_INVALID_HANDLE, "use after destroy");
    EXPECT(extmem_memory_data_size((extmem_memory *)ctx, &size) == EXTMEM_ERROR_INVALID_HANDLE, "wrong kind");
    EXPECT(has(extmem_last_error_message(), "another kind"), "named");
    EXPECT(extmem_memory_vk_buffer(NULL) == VK_NULL_HANDLE, "a getter on NULL");
    extmem_context_destroy(NULL);
    EXPECT(has(extmem_last_error_message(), "extmem_context is NULL"), "destroy(NULL) is refused, not a crash");

    /* A pipe is not memory: refused before any driver sees it, and closed exactly once. */
    OK(extmem_memory_create(ctx, &o, &m));
    extmem_descriptor d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    int fd = -1;
    OK(extmem_memory_export(m, &d, &fd));
    EXPECT(fd >= 0 && fd_is_open(fd), "export gives an open fd");
    close(fd);
    int p[2];
    EXPECT(pipe(p) == 0, "pipe");
    extmem_memory *imported = (extmem_memory *)1;
    extmem_status s = extmem_memory_import(ctx, &d, p[0], &imported);
    EXPECT(s == EXTMEM_ERROR_IMPORT_REFUSED, "a pipe as memory: %s", extmem_status_name(s));
    EXPECT(has(extmem_last_error_message(), "pipe"), "named");
    EXPECT(imported == NULL, "nothing made");
    EXPECT(!fd_is_open(p[0]), "the import took the pipe's fd and closed it");
    close(p[1]);
    /* The fd is taken even when the arguments are wrong. */
    EXPECT(pipe(p) == 0, "pipe");
    EXPECT(extmem_memory_import(NULL, &d, p[0], &imported) == EXTMEM_ERROR_INVALID_HANDLE, "NULL context");
    EXPECT(!fd_is_open(p[0]), "closed on a bad argument too");
    close(p[1]);
    EXPECT(extmem_memory_import(ctx, &d, -1, &imported) == EXTMEM_ERROR_INVALID_ARGUMENT, "fd -1");
    /* Forged descriptors: the wire's rules and the import's checks, with the field named. */
    OK(extmem_memory_export(m, &d, &fd));
    extmem_descriptor forged = d;
    forged.offset = forged.allocation_size;
    EXPECT(extmem_memory_import(ctx, &forged, fd, &imported) == EXTMEM_ERROR_INVALID_DESCRIPTION, "offset");
    EXPECT(has(extmem_last_error_message(), "offset"), "named");
    EXPECT(!fd_is_open(fd), "taken");
    OK(extmem_memory_export(m, &d, &fd));
    forged = d;
    forged.device_uuid[0] ^= 0xff;
    EXPECT(extmem_memory_import(ctx, &forged, fd, &imported) == EXTMEM_ERROR_IMPORT_REFUSED, "another device");
    EXPECT(has(extmem_last_error_message(), "device UUID"), "named");
    OK(extmem_memory_export(m, &d, &fd));
    forged = d;
    forged.resource.buffer.size = d.allocation_size * 2;
    EXPECT(extmem_memory_import(ctx, &forged, fd, &imported) < 0, "a buffer larger than its memory");
    extmem_memory_destroy(m);
}

static void round_trip(extmem_context *exporter, extmem_context *importer) {
    enum { N = 65536 };
    static unsigned char in[N], out[N];
    extmem_memory_options o = buffer_options(N);
    extmem_memory *m = NULL, *imported = NULL;
    OK(extmem_memory_create(exporter, &o, &m));
    for (int i = 0; i < N; i++) in[i] = (unsigned char)(i * 7 + 3);
    OK(extmem_memory_write(m, in, N, NULL));
    EXPECT(extmem_memory_write(m, in, N - 1, NULL) == EXTMEM_ERROR_INVALID_ARGUMENT, "a write of the wrong size");
    EXPECT(has(extmem_last_error_message(), "size is 65535, the memory holds 65536 bytes"), "named");
    EXPECT(extmem_frames_ready_value(3) == 7 && extmem_frames_done_value(3) == 8, "2n+1, 2n+2");
    /* A caller built against a later, larger struct is accepted (the tail is not read). */
    struct {
        extmem_memory_options o;
        uint64_t later_field;
    } grown;
    memset(&grown, 0, sizeof grown);
    grown.o = o;
    grown.o.struct_size = sizeof grown;
    extmem_memory *m2 = NULL;
    OK(extmem_memory_create(exporter, &grown.o, &m2));
    extmem_memory_destroy(m2);
    extmem_descriptor d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    int fd = -1;
    OK(extmem_memory_export(m, &d, &fd));
    EXPECT(d.resource.kind == EXTMEM_RESOURCE_BUFFER && d.allocation_size >= N, "the descriptor");
    OK(extmem_memory_import(importer, &d, fd, &imported));
    EXPECT(extmem_memory_vk_buffer(imported) != VK_NULL_HANDLE, "a buffer");
    EXPECT(extmem_memory_vk_image(imported) == VK_NULL_HANDLE, "no image");
    OK(extmem_memory_read(imported, out, N, NULL));
    EXPECT(memcmp(in, out, N) == 0, "the bytes crossed");
    /* The importer's context goes first: the memory keeps it alive. */
    extmem_context_destroy(importer);
    for (int i = 0; i < N; i++) in[i] = (unsigned char)(i ^ 0x5a);
    OK(extmem_memory_write(imported, in, N, NULL));
    OK(extmem_memory_read(m, out, N, NULL));
    EXPECT(memcmp(in, out, N) == 0, "and back");
    extmem_memory_destroy(imported);
    extmem_memory_destroy(m);

    /* An image: created, exported, its descriptor says so. */
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.resource.kind = EXTMEM_RESOURCE_IMAGE;
    o.resource.image = (extmem_image_desc){VK_FORMAT_R8G8B8A8_UNORM, 64, 32, 1, 1, 1, VK_IMAGE_TILING_OPTIMAL,
                                           VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT};
    OK(extmem_memory_create(exporter, &o, &m));
    EXPECT(extmem_memory_vk_image(m) != VK_NULL_HANDLE, "an image");
    OK(extmem_memory_get_descriptor(m, &d));
    EXPECT(d.resource.kind == EXTMEM_RESOURCE_IMAGE && d.resource.image.width == 64, "its descriptor");
    uint64_t size = 0;
    OK(extmem_memory_data_size(m, &size));
    EXPECT(size == 64 * 32 * 4, "its bytes");
    extmem_memory_destroy(m);
}

struct consumer {
    const char *path;
    extmem_context *ctx;
    int held;
};

static void *pool_consumer(void *arg) {
    struct consumer *c = arg;
    extmem_channel *ch = NULL;
    extmem_pool_importer *imp = NULL;
    extmem_pooled_import *got = NULL;
    OK(extmem_channel_connect(c->path, NULL, &ch));
    OK(extmem_pool_importer_create(c->ctx, &imp));
    for (int i = 0; i < 3; i++) {
        OK(extmem_pool_importer_recv(imp, ch, &got));
        extmem_pooled_desc d;
        OK(extmem_pooled_import_get_desc(got, &d));
        if (extmem_pooled_import_vk_buffer(got) != VK_NULL_HANDLE && d.resource.buffer.size == 4096) c->held++;
        OK(extmem_pooled_import_release(got, ch));
        EXPECT(extmem_pooled_import_release(got, ch) == EXTMEM_ERROR_INVALID_HANDLE, "released twice");
    }
    /* A forged hand-off (a block never sent) is refused, and the producer told why. */
    extmem_pooled_import *none = NULL;
    extmem_status s = extmem_pool_importer_recv(imp, ch, &none);
    EXPECT(s == EXTMEM_ERROR_POOL && none == NULL, "forged: %s", extmem_status_name(s));
    EXPECT(has(extmem_last_error_message(), "never sent"), "named");
    EXPECT(extmem_pool_importer_recv(imp, ch, &none) == EXTMEM_END_OF_STREAM, "Bye ends the stream");
    extmem_pool_importer_destroy(imp);
    extmem_channel_destroy(ch);
    return NULL;
}

static void pool(extmem_context *producer, extmem_context *consumer_ctx) {
    extmem_listener *l = NULL;
    OK(extmem_listener_bind(NULL, &l));
    struct consumer c = {extmem_listener_path(l), consumer_ctx, 0};
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, pool_consumer, &c) == 0, "thread");
    extmem_channel *ch = NULL;
    OK(extmem_listener_accept(l, 30000000000ull, NULL, &ch));
    extmem_pool_options po = {sizeof po, 1 << 20};
    extmem_pool *p = NULL;
    OK(extmem_pool_create(producer, &po, &p));
    extmem_pool_link *link = NULL;
    OK(extmem_pool_link_create(p, ch, &link));
    extmem_resource_desc r;
    memset(&r, 0, sizeof r);
    r.kind = EXTMEM_RESOURCE_BUFFER;
    r.buffer.size = 4096;
    r.buffer.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    extmem_pool_handle first = {0, 0, 0, 0};
    for (int i = 0; i < 3; i++) {
        extmem_pooled *b = NULL;
        OK(extmem_pool_allocate(p, &r, &b));
        extmem_pooled_desc d;
        OK(extmem_pooled_get_desc(b, &d));
        if (i == 0) first = d.handle;
        /* Released by everyone, so the range is reused with a new generation. */
        EXPECT(d.handle.offset == first.offset && d.handle.generation > first.generation - (i == 0),
               "sub-allocation %d at %llu", i, (unsigned long long)d.handle.offset);
        OK(extmem_pool_link_share(link, b));
        OK(extmem_pool_link_wait_released(link, b));
        extmem_pooled_destroy(b);
    }
    /* A forged hand-off, sent as a raw message: the consumer refuses it with a Verdict. */
    static extmem_message m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.kind = EXTMEM_MESSAGE_POOL_SHARE;
    m.fd = 0;
    m.pooled.handle = (extmem_pool_handle){99, 0, 4096, 1};
    m.pooled.resource = r;
    EXPECT(extmem_channel_send(ch, &m) == EXTMEM_ERROR_INVALID_ARGUMENT, "an fd with a message that carries none");
    m.fd = -1;
    m.pooled.handle.generation = 0;
    EXPECT(extmem_channel_send(ch, &m) == EXTMEM_ERROR_INVALID_DESCRIPTION, "generation 0 never leaves");
    EXPECT(has(extmem_last_error_message(), "generation"), "named");
    m.pooled.handle.generation = 1;
    OK(extmem_channel_send(ch, &m));
    static extmem_message answer;
    answer.struct_size = sizeof answer;
    OK(extmem_channel_recv(ch, &answer));
    EXPECT(answer.kind == EXTMEM_MESSAGE_VERDICT && answer.ok == VK_FALSE && answer.fd == -1, "a refusal");
    EXPECT(has(answer.detail, "never sent"), "with the reason: %s", answer.detail);
    /* The link keeps the pool and the channel alive: their handles may go first. */
    extmem_pool_destroy(p);
    OK(extmem_channel_bye(ch));
    extmem_channel_destroy(ch);
    extmem_pool_link_destroy(link);
    pthread_join(t, NULL);
    EXPECT(c.held == 3, "the consumer held %d of 3", c.held);
    extmem_listener_destroy(l);
}

/* A consumer that refuses what it is sent, by hand, with the raw message API. */
static void *refusing_consumer(void *arg) {
    extmem_channel *ch = NULL;
    OK(extmem_channel_connect((const char *)arg, NULL, &ch));
    static extmem_message m;
    m.struct_size = sizeof m;
    OK(extmem_channel_recv(ch, &m));
    EXPECT(m.kind == EXTMEM_MESSAGE_SHARE && m.fd >= 0, "a Share with its fd");
    EXPECT(m.descriptor.resource.kind == EXTMEM_RESOURCE_BUFFER && m.descriptor.resource.buffer.size == 4096, "the buffer");
    close(m.fd);
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.kind = EXTMEM_MESSAGE_VERDICT;
    m.fd = -1;
    m.ok = VK_FALSE;
    strcpy(m.detail, "no thanks\n\x1b[31m");
    OK(extmem_channel_send(ch, &m));
    extmem_channel_destroy(ch);
    return NULL;
}

static void refused_share(extmem_context *ctx) {
    extmem_listener *l = NULL;
    OK(extmem_listener_bind(NULL, &l));
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, refusing_consumer, (void *)extmem_listener_path(l)) == 0, "thread");
    extmem_channel *ch = NULL;
    OK(extmem_listener_accept(l, 30000000000ull, NULL, &ch));
    extmem_memory_options o = buffer_options(4096);
    extmem_memory *m = NULL;
    OK(extmem_memory_create(ctx, &o, &m));
    extmem_status s = extmem_channel_share_memory(ch, m);
    EXPECT(s == EXTMEM_ERROR_PEER_REFUSED, "%s", extmem_status_name(s));
    /* The peer's text, control characters escaped. */
    EXPECT(has(extmem_last_error_message(), "the peer refused it: no thanks\\n\\u{1b}[31m"), "escaped");
    pthread_join(t, NULL);
    extmem_memory_destroy(m);
    extmem_channel_destroy(ch);
    extmem_listener_destroy(l);
}

static void *other_thread(void *arg) {
    (void)arg;
    uint64_t size;
    EXPECT(extmem_memory_data_size(NULL, &size) == EXTMEM_ERROR_INVALID_HANDLE, "NULL");
    EXPECT(has(extmem_last_error_message(), "extmem_memory_data_size"), "this thread's error");
    return NULL;
}

/* The last error is per thread: another thread's failure does not replace this one's. */
static void thread_local_errors(void) {
    EXPECT(extmem_channel_connect(NULL, NULL, NULL) == EXTMEM_ERROR_INVALID_ARGUMENT, "NULL");
    const char *mine = extmem_last_error_message();
    EXPECT(has(mine, "extmem_channel_connect"), "%s", mine);
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, other_thread, NULL) == 0, "thread");
    pthread_join(t, NULL);
    EXPECT(has(extmem_last_error_message(), "extmem_channel_connect"), "still this thread's own");
    EXPECT(extmem_abi_version() > 0 && has(extmem_last_error_message(), "connect"), "a getter keeps it");
}

int main(void) {
    int fds_before = open_fds();
    EXPECT(extmem_abi_version() == (EXTMEM_ABI_VERSION_MAJOR << 16 | EXTMEM_ABI_VERSION_MINOR), "ABI");
    EXPECT(strcmp(extmem_status_name(EXTMEM_END_OF_STREAM), "EXTMEM_END_OF_STREAM") == 0, "names");
    EXPECT(EXTMEM_ERROR_PUBLISHER_CRASHED != EXTMEM_END_OF_STREAM, "distinct");
    extmem_context_options co;
    memset(&co, 0, sizeof co);
    co.struct_size = sizeof co;
    co.validation = VK_TRUE;
    co.device_index = -1;
    co.queue = 9;
    extmem_context *a = NULL, *b = NULL;
    EXPECT(extmem_context_create(&co, &a) == EXTMEM_ERROR_INVALID_ARGUMENT, "queue 9");
    co.queue = EXTMEM_QUEUE_GENERAL;
    OK(extmem_context_create(&co, &a));
    OK(extmem_context_create(&co, &b));
    thread_local_errors();
    misuse(a);
    round_trip(a, b); /* destroys b */
    OK(extmem_context_create(&co, &b));
    pool(a, b);
    refused_share(a);
    extmem_context_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    OK(extmem_context_get_info(a, &info));
    EXPECT(info.owns_device == VK_TRUE && info.validation_messages == 0, "%u validation messages",
           info.validation_messages);
    printf("device: %s\n", info.device_name);
    extmem_context_destroy(b);
    extmem_context_destroy(a);
    EXPECT(extmem_live_handle_count() == 0, "%llu handles left", (unsigned long long)extmem_live_handle_count());
    EXPECT(open_fds() == fds_before, "descriptors: %d before, %d after", fds_before, open_fds());
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
