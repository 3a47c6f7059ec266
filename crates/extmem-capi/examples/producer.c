/*
 * producer: a C application with its own Vulkan instance and device hands frames to a
 * consumer over extmem's protocol (docs/src/protocol.md), using only include/extmem.h.
 *
 *   producer [--frames N] [--socket PATH] [--image]
 *
 * It creates its instance (with the Khronos validation layer and a messenger that counts its
 * messages) and device (VK_KHR_external_memory_fd), lends them to extmem
 * (extmem_context_create_borrowed: its own vkGetInstanceProcAddr, its queue lock), makes an
 * exportable buffer, listens (printing "LISTENING <path>"), shares the buffer, and for each
 * frame n renders the protocol's test pattern into it with its own command buffer (a copy
 * from its staging buffer between extmem's acquire and release barriers), says FrameReady(n),
 * waits for FrameDone(n) and checks the consumer's write-back (seed n ^ 0x5EED00000000).
 * `extmem peer --socket PATH --validate` and examples/consumer.cpp are such consumers.
 * Where the device can share a timeline semaphore, the frames are ordered on it instead
 * (extmem writes them; lavapipe cannot, and says so). With --image the shared memory is a
 * 256x256 RGBA8 optimal-tiling image that extmem writes and reads (handed over in GENERAL,
 * released to VK_QUEUE_FAMILY_EXTERNAL). Exit 0 and "PASS" only when every
 * frame crossed both ways and no validation message was seen.
 */
#include "extmem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE (256 * 1024)

#define VK(call)                                                                      \
    do {                                                                              \
        VkResult r_ = (call);                                                         \
        if (r_ != VK_SUCCESS) {                                                       \
            fprintf(stderr, "FAIL: %s returned %d (line %d)\n", #call, r_, __LINE__); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define EM(call)                                                                          \
    do {                                                                                  \
        extmem_status s_ = (call);                                                        \
        if (s_ != EXTMEM_OK) {                                                            \
            fprintf(stderr, "FAIL: %s: %s: %s\n", #call, extmem_status_name(s_),          \
                    extmem_last_error_message());                                         \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static int validation_messages;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)user;
    if ((types & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT) &&
        (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT))) {
        validation_messages++;
        fprintf(stderr, "validation: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

static void lock_queue(void *user) { pthread_mutex_lock((pthread_mutex_t *)user); }
static void unlock_queue(void *user) { pthread_mutex_unlock((pthread_mutex_t *)user); }

/* docs/src/protocol.md §4: byte k of frame `seed`. */
static void pattern(unsigned char *out, size_t len, uint64_t seed) {
    uint64_t s = seed * 0xD1B54A32D192ED03ull;
    for (size_t k = 0; k < len; k++) {
        uint64_t x = ((uint64_t)k * 0x9E3779B97F4A7C15ull) ^ s;
        out[k] = (unsigned char)(((x >> 29) ^ (x >> 13)) & 0xff);
    }
}

static int has_extension(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *list = calloc(n, sizeof *list);
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, list);
    int found = 0;
    for (uint32_t i = 0; i < n; i++) found |= strcmp(list[i].extensionName, name) == 0;
    free(list);
    return found;
}

struct app {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice device;
    VkQueue queue;
    uint32_t family;
    const char *extensions[2];
    uint32_t extension_count;
    VkBool32 timeline;
    VkCommandPool pool;
    VkCommandBuffer cb;
    VkFence fence;
    VkBuffer staging;
    VkDeviceMemory staging_memory;
    void *staging_ptr;
};

static void create_vulkan(struct app *a) {
    VkApplicationInfo ai = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "extmem C producer", 1, NULL, 0,
                            VK_API_VERSION_1_2};
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    const char *ext[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT mi;
    memset(&mi, 0, sizeof mi);
    mi.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
    mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT;
    mi.pfnUserCallback = on_message;
    VkInstanceCreateInfo ii = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, &mi, 0, &ai, 1, layers, 1, ext};
    VK(vkCreateInstance(&ii, NULL, &a->instance));
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(a->instance, "vkCreateDebugUtilsMessengerEXT");
    VK(create_messenger(a->instance, &mi, NULL, &a->messenger));
    uint32_t n = 1;
    VkResult r = vkEnumeratePhysicalDevices(a->instance, &n, &a->pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
        fprintf(stderr, "FAIL: no Vulkan device\n");
        exit(1);
    }
    uint32_t nf = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(a->pd, &nf, NULL);
    VkQueueFamilyProperties *families = calloc(nf, sizeof *families);
    vkGetPhysicalDeviceQueueFamilyProperties(a->pd, &nf, families);
    a->family = 0;
    while (a->family < nf && !(families[a->family].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)))
        a->family++;
    free(families);
    a->extensions[a->extension_count++] = VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME;
    if (has_extension(a->pd, VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME))
        a->extensions[a->extension_count++] = VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME;
    VkPhysicalDeviceVulkan12Features f12, enable12;
    memset(&f12, 0, sizeof f12);
    memset(&enable12, 0, sizeof enable12);
    f12.sType = enable12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
    VkPhysicalDeviceFeatures2 f2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f12, {0}};
    vkGetPhysicalDeviceFeatures2(a->pd, &f2);
    a->timeline = f12.timelineSemaphore;
    enable12.timelineSemaphore = a->timeline;
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qi = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, NULL, 0, a->family, 1, &priority};
    VkDeviceCreateInfo di = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, &enable12, 0, 1, &qi, 0, NULL,
                             a->extension_count, a->extensions, NULL};
    VK(vkCreateDevice(a->pd, &di, NULL, &a->device));
    vkGetDeviceQueue(a->device, a->family, 0, &a->queue);

    VkCommandPoolCreateInfo pi = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, NULL,
                                  VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, a->family};
    VK(vkCreateCommandPool(a->device, &pi, NULL, &a->pool));
    VkCommandBufferAllocateInfo ci = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, NULL, a->pool,
                                      VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    VK(vkAllocateCommandBuffers(a->device, &ci, &a->cb));
    VkFenceCreateInfo fi = {VK_STRUCTURE_TYPE_FENCE_CREATE_INFO, NULL, 0};
    VK(vkCreateFence(a->device, &fi, NULL, &a->fence));
    /* The application's own staging buffer, host-visible, that it "renders" into. */
    VkBufferCreateInfo bi = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, NULL, 0, SIZE, VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                             VK_SHARING_MODE_EXCLUSIVE, 0, NULL};
    VK(vkCreateBuffer(a->device, &bi, NULL, &a->staging));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(a->device, a->staging, &req);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(a->pd, &mp);
    uint32_t type = 0;
    VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    while (type < mp.memoryTypeCount && !((req.memoryTypeBits & (1u << type)) &&
                                          (mp.memoryTypes[type].propertyFlags & host) == host))
        type++;
    VkMemoryAllocateInfo mai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, NULL, req.size, type};
    VK(vkAllocateMemory(a->device, &mai, NULL, &a->staging_memory));
    VK(vkBindBufferMemory(a->device, a->staging, a->staging_memory, 0));
    VK(vkMapMemory(a->device, a->staging_memory, 0, VK_WHOLE_SIZE, 0, &a->staging_ptr));
}

static void destroy_vulkan(struct app *a) {
    vkDeviceWaitIdle(a->device);
    vkUnmapMemory(a->device, a->staging_memory);
    vkDestroyBuffer(a->device, a->staging, NULL);
    vkFreeMemory(a->device, a->staging_memory, NULL);
    vkDestroyFence(a->device, a->fence, NULL);
    vkDestroyCommandPool(a->device, a->pool, NULL);
    vkDestroyDevice(a->device, NULL);
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(a->instance, "vkDestroyDebugUtilsMessengerEXT");
    destroy_messenger(a->instance, a->messenger, NULL);
    vkDestroyInstance(a->instance, NULL);
}

/* The application's own GPU work on frame n: staging -> shared buffer, between extmem's
   barriers, submitted under its queue lock, waited for with its own fence. */
static void render(struct app *a, extmem_memory *shared, uint64_t frame) {
    pattern(a->staging_ptr, SIZE, frame);
    VkCommandBufferBeginInfo bi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, NULL,
                                   VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, NULL};
    VK(vkBeginCommandBuffer(a->cb, &bi));
    EM(extmem_memory_record_acquire(shared, a->cb, frame > 0 ? VK_TRUE : VK_FALSE, VK_IMAGE_LAYOUT_UNDEFINED,
                                    VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT));
    VkBufferCopy region = {0, 0, SIZE};
    vkCmdCopyBuffer(a->cb, a->staging, extmem_memory_vk_buffer(shared), 1, &region);
    EM(extmem_memory_record_release(shared, a->cb, VK_IMAGE_LAYOUT_UNDEFINED, VK_ACCESS_TRANSFER_WRITE_BIT,
                                    VK_PIPELINE_STAGE_TRANSFER_BIT));
    VK(vkEndCommandBuffer(a->cb));
    VkSubmitInfo si = {VK_STRUCTURE_TYPE_SUBMIT_INFO, NULL, 0, NULL, NULL, 1, &a->cb, 0, NULL};
    pthread_mutex_lock(&queue_lock);
    VK(vkQueueSubmit(a->queue, 1, &si, a->fence));
    pthread_mutex_unlock(&queue_lock);
    VK(vkWaitForFences(a->device, 1, &a->fence, VK_TRUE, UINT64_MAX));
    VK(vkResetFences(a->device, 1, &a->fence));
}

int main(int argc, char **argv) {
    uint64_t frames = 3;
    const char *socket_path = NULL;
    int image = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) frames = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) socket_path = argv[++i];
        else if (strcmp(argv[i], "--image") == 0) image = 1;
        else {
            fprintf(stderr, "usage: producer [--frames N] [--socket PATH] [--image]\n");
            return 2;
        }
    }
    struct app a;
    memset(&a, 0, sizeof a);
    create_vulkan(&a);

    extmem_app_device app;
    memset(&app, 0, sizeof app);
    app.struct_size = sizeof app;
    app.get_instance_proc_addr = vkGetInstanceProcAddr;
    app.instance = a.instance;
    app.api_version = VK_API_VERSION_1_2;
    app.physical_device = a.pd;
    app.device = a.device;
    app.queue_family_index = a.family;
    app.queue = a.queue;
    app.enabled_extension_count = a.extension_count;
    app.enabled_extension_names = a.extensions;
    app.timeline_semaphore = a.timeline;
    app.lock_queue = lock_queue;
    app.unlock_queue = unlock_queue;
    app.queue_user_data = &queue_lock;
    extmem_context *ctx = NULL;
    EM(extmem_context_create_borrowed(&app, &ctx));

    extmem_memory_options mo;
    memset(&mo, 0, sizeof mo);
    mo.struct_size = sizeof mo;
    mo.resource.kind = EXTMEM_RESOURCE_BUFFER;
    mo.resource.buffer.size = SIZE;
    mo.resource.buffer.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    if (image) {
        /* 256 x 256 texels of 4 bytes: SIZE bytes, tightly packed, as extmem reads them. */
        mo.resource.kind = EXTMEM_RESOURCE_IMAGE;
        mo.resource.image = (extmem_image_desc){VK_FORMAT_R8G8B8A8_UNORM, 256, 256, 1, 1, 1, VK_IMAGE_TILING_OPTIMAL,
                                                VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT};
    }
    mo.handle_type = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
    extmem_memory *shared = NULL;
    EM(extmem_memory_create(ctx, &mo, &shared));

    extmem_semaphore *semaphore = NULL;
    extmem_status s = extmem_semaphore_create(ctx, EXTMEM_SEMAPHORE_TIMELINE, &semaphore);
    if (s == EXTMEM_ERROR_UNSUPPORTED) printf("SKIPPED: a shared timeline semaphore: %s\n", extmem_last_error_message());
    else if (s != EXTMEM_OK) EM(s);

    extmem_listener *listener = NULL;
    EM(extmem_listener_bind(socket_path, &listener));
    printf("LISTENING %s\n", extmem_listener_path(listener));
    fflush(stdout);
    extmem_channel *ch = NULL;
    EM(extmem_listener_accept(listener, 60ull * 1000000000ull, NULL, &ch));
    EM(extmem_channel_share_memory(ch, shared));
    if (semaphore) EM(extmem_channel_share_semaphore(ch, semaphore));

    unsigned char *want = malloc(SIZE), *got = malloc(SIZE);
    for (uint64_t n = 0; n < frames; n++) {
        extmem_handoff h;
        memset(&h, 0, sizeof h);
        h.struct_size = sizeof h;
        h.mode = EXTMEM_HANDOFF_FRAME;
        h.role = EXTMEM_ROLE_PRODUCER;
        h.frame = n;
        h.semaphore = semaphore;
        if (semaphore || image) {
            /* extmem writes it: with a semaphore, ordered on the GPU (the write waits for the
               previous done and signals ready); without, on the host. */
            pattern(want, SIZE, n);
            h.step = EXTMEM_FRAME_AROUND;
            EM(extmem_memory_write(shared, want, SIZE, &h));
        } else {
            render(&a, shared, n);
        }
        EM(extmem_frames_signal_ready(ch, n));
        EM(extmem_frames_wait_done(ch, n));
        h.step = EXTMEM_FRAME_AFTER_PEER;
        EM(extmem_memory_read(shared, got, SIZE, &h));
        pattern(want, SIZE, n ^ 0x5EED00000000ull);
        for (size_t k = 0; k < SIZE; k++) {
            if (got[k] != want[k]) {
                fprintf(stderr, "FAIL: frame %llu: byte %zu is %#04x, the consumer's pattern has %#04x\n",
                        (unsigned long long)n, k, got[k], want[k]);
                return 1;
            }
        }
        printf("frame %llu: the consumer's write-back matches\n", (unsigned long long)n);
    }
    free(want);
    free(got);
    EM(extmem_channel_bye(ch));
    extmem_channel_destroy(ch);
    extmem_listener_destroy(listener);
    extmem_semaphore_destroy(semaphore); /* NULL without one: refused, recorded, harmless */
    extmem_memory_destroy(shared);
    extmem_context_destroy(ctx);
    if (extmem_live_handle_count() != 0) {
        fprintf(stderr, "FAIL: %llu extmem handles left\n", (unsigned long long)extmem_live_handle_count());
        return 1;
    }
    destroy_vulkan(&a);
    if (validation_messages) {
        fprintf(stderr, "FAIL: %d validation message(s)\n", validation_messages);
        return 1;
    }
    printf("PASS: %llu frames crossed both ways\n", (unsigned long long)frames);
    return 0;
}
