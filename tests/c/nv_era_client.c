/*
 * nv_era_client: the pattern of the applications that use the NV extensions (VR runtimes and
 * their clients, written in 2016-2018): a Vulkan 1.0 application that lists the extensions it
 * requires up front, enables exactly those, and fails if any is missing:
 *   instance: VK_NV_external_memory_capabilities
 *   device:   VK_NV_external_memory, VK_NV_dedicated_allocation, VK_KHR_external_memory_fd
 * Written only against the Vulkan headers and the extensions' reference pages; it knows
 * nothing of extmem.
 *
 *   nv_era_client produce SOCKET   create a dedicated NV-exportable image (VkExternalMemoryImage
 *                                  CreateInfoNV + VkDedicatedAllocationImageCreateInfoNV, memory
 *                                  with VkExportMemoryAllocateInfoNV +
 *                                  VkDedicatedAllocationMemoryAllocateInfoNV), upload a pattern,
 *                                  export it with vkGetMemoryFdKHR and send the descriptor to the
 *                                  importer over a Unix socket (SCM_RIGHTS)
 *   nv_era_client import SOCKET    receive it, import it into a dedicated NV image of its own,
 *                                  read the image back and compare every byte
 *
 * The producer waits for the importer's verdict before it frees anything. Exit status 0 and a
 * last line "PASS" only when every step worked and no validation message was seen.
 */
#define _GNU_SOURCE
#include <vulkan/vulkan.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define W 128
#define H 64
#define BYTES (W * H * 4)

static int validation_messages;

#define CHECK(call)                                                                   \
    do {                                                                              \
        VkResult r_ = (call);                                                         \
        if (r_ != VK_SUCCESS) {                                                       \
            fprintf(stderr, "FAIL: %s returned %d (line %d)\n", #call, r_, __LINE__); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static void fail(const char *what) {
    fprintf(stderr, "FAIL: %s\n", what);
    exit(1);
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)severity; (void)user;
    if (types & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT) {
        validation_messages++;
        fprintf(stderr, "validation: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

struct gpu {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice device;
    VkQueue queue;
    uint32_t family;
    VkCommandPool pool;
    VkPhysicalDeviceMemoryProperties mem;
};

static int in_list(const VkExtensionProperties *list, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(list[i].extensionName, name) == 0) return 1;
    return 0;
}

/* Whether an instance extension is offered: by the implementation or by any layer. */
static int instance_offers(const char *name) {
    uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
    VkExtensionProperties *list = calloc(n + 1, sizeof *list);
    vkEnumerateInstanceExtensionProperties(NULL, &n, list);
    int found = in_list(list, n, name);
    free(list);
    uint32_t layers = 0;
    vkEnumerateInstanceLayerProperties(&layers, NULL);
    VkLayerProperties *lp = calloc(layers + 1, sizeof *lp);
    vkEnumerateInstanceLayerProperties(&layers, lp);
    for (uint32_t i = 0; i < layers && !found; i++) {
        uint32_t m = 0;
        vkEnumerateInstanceExtensionProperties(lp[i].layerName, &m, NULL);
        VkExtensionProperties *l = calloc(m + 1, sizeof *l);
        vkEnumerateInstanceExtensionProperties(lp[i].layerName, &m, l);
        found = in_list(l, m, name);
        free(l);
    }
    free(lp);
    return found;
}

static const char *DEVICE_EXTENSIONS[] = {VK_NV_EXTERNAL_MEMORY_EXTENSION_NAME, VK_NV_DEDICATED_ALLOCATION_EXTENSION_NAME,
                                          VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME};
#define DEVICE_EXTENSION_COUNT 3

static void create(struct gpu *g, const char *role) {
    if (!instance_offers(VK_NV_EXTERNAL_MEMORY_CAPABILITIES_EXTENSION_NAME))
        fail("required instance extension VK_NV_external_memory_capabilities is missing");
    /* Debug utils only where a validation layer offers it: it is how this test hears it. */
    int debug = instance_offers(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    const char *exts[2] = {VK_NV_EXTERNAL_MEMORY_CAPABILITIES_EXTENSION_NAME, VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT messenger = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
        .pfnUserCallback = on_message,
    };
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = role,
                             .apiVersion = VK_API_VERSION_1_0};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = debug ? &messenger : NULL,
                               .pApplicationInfo = &app, .enabledExtensionCount = debug ? 2 : 1,
                               .ppEnabledExtensionNames = exts};
    CHECK(vkCreateInstance(&ci, NULL, &g->instance));
    if (debug) {
        PFN_vkCreateDebugUtilsMessengerEXT make = (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            g->instance, "vkCreateDebugUtilsMessengerEXT");
        CHECK(make(g->instance, &messenger, NULL, &g->messenger));
    }
    uint32_t count = 1;
    VkResult r = vkEnumeratePhysicalDevices(g->instance, &count, &g->pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || count == 0) fail("no Vulkan device");
    vkGetPhysicalDeviceMemoryProperties(g->pd, &g->mem);

    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(g->pd, NULL, &n, NULL);
    VkExtensionProperties *list = calloc(n + 1, sizeof *list);
    vkEnumerateDeviceExtensionProperties(g->pd, NULL, &n, list);
    for (int i = 0; i < DEVICE_EXTENSION_COUNT; i++) {
        if (!in_list(list, n, DEVICE_EXTENSIONS[i])) {
            fprintf(stderr, "FAIL: required device extension %s is missing\n", DEVICE_EXTENSIONS[i]);
            exit(1);
        }
    }
    free(list);
    uint32_t families = 16;
    VkQueueFamilyProperties qf[16];
    vkGetPhysicalDeviceQueueFamilyProperties(g->pd, &families, qf);
    g->family = 0;
    for (uint32_t i = 0; i < families; i++)
        if (qf[i].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) { g->family = i; break; }
    float priority = 1.0f;
    VkDeviceQueueCreateInfo q = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = g->family,
                                 .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &q, .enabledExtensionCount = DEVICE_EXTENSION_COUNT,
                              .ppEnabledExtensionNames = DEVICE_EXTENSIONS};
    CHECK(vkCreateDevice(g->pd, &dci, NULL, &g->device));
    vkGetDeviceQueue(g->device, g->family, 0, &g->queue);
    VkCommandPoolCreateInfo pool = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = g->family};
    CHECK(vkCreateCommandPool(g->device, &pool, NULL, &g->pool));
}

static void destroy(struct gpu *g) {
    vkDestroyCommandPool(g->device, g->pool, NULL);
    vkDestroyDevice(g->device, NULL);
    if (g->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT d = (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            g->instance, "vkDestroyDebugUtilsMessengerEXT");
        d(g->instance, g->messenger, NULL);
    }
    vkDestroyInstance(g->instance, NULL);
}

static uint32_t memory_type(struct gpu *g, uint32_t bits, VkMemoryPropertyFlags flags) {
    for (uint32_t i = 0; i < g->mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (g->mem.memoryTypes[i].propertyFlags & flags) == flags) return i;
    fail("no memory type");
    return 0;
}

/* The dedicated NV-exportable image both sides create (identical parameters). */
static VkImage nv_image(struct gpu *g) {
    VkDedicatedAllocationImageCreateInfoNV dedicated = {.sType = VK_STRUCTURE_TYPE_DEDICATED_ALLOCATION_IMAGE_CREATE_INFO_NV,
                                                        .dedicatedAllocation = VK_TRUE};
    VkExternalMemoryImageCreateInfoNV external = {.sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO_NV,
                                                  .pNext = &dedicated,
                                                  .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_WIN32_BIT_NV};
    VkImageCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO, .pNext = &external, .imageType = VK_IMAGE_TYPE_2D,
                            .format = VK_FORMAT_R8G8B8A8_UNORM, .extent = {W, H, 1}, .mipLevels = 1, .arrayLayers = 1,
                            .samples = VK_SAMPLE_COUNT_1_BIT, .tiling = VK_IMAGE_TILING_OPTIMAL,
                            .usage = VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT,
                            .sharingMode = VK_SHARING_MODE_EXCLUSIVE, .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED};
    VkImage image;
    CHECK(vkCreateImage(g->device, &ci, NULL, &image));
    return image;
}

static void barrier(VkCommandBuffer cb, VkImage image, VkImageLayout from, VkImageLayout to, uint32_t src_family,
                    uint32_t dst_family, VkAccessFlags src, VkAccessFlags dst) {
    VkImageMemoryBarrier b = {.sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, .srcAccessMask = src, .dstAccessMask = dst,
                              .oldLayout = from, .newLayout = to, .srcQueueFamilyIndex = src_family,
                              .dstQueueFamilyIndex = dst_family, .image = image,
                              .subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 0, NULL, 0, NULL,
                         1, &b);
}

/* Upload (write) or read back the image through a host-visible buffer. An upload leaves the
 * image in GENERAL released to the external queue family; a read acquires it from there. */
static void transfer(struct gpu *g, VkImage image, unsigned char *bytes, int write) {
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = BYTES,
                              .usage = write ? VK_BUFFER_USAGE_TRANSFER_SRC_BIT : VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    VkBuffer buffer;
    CHECK(vkCreateBuffer(g->device, &bci, NULL, &buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(g->device, buffer, &req);
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                               .memoryTypeIndex = memory_type(g, req.memoryTypeBits,
                                   VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)};
    VkDeviceMemory memory;
    CHECK(vkAllocateMemory(g->device, &ai, NULL, &memory));
    CHECK(vkBindBufferMemory(g->device, buffer, memory, 0));
    unsigned char *mapped;
    CHECK(vkMapMemory(g->device, memory, 0, BYTES, 0, (void **)&mapped));
    if (write) memcpy(mapped, bytes, BYTES);

    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = g->pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    VkCommandBuffer cb;
    CHECK(vkAllocateCommandBuffers(g->device, &cai, &cb));
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    CHECK(vkBeginCommandBuffer(cb, &begin));
    VkBufferImageCopy region = {.imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, .imageExtent = {W, H, 1}};
    if (write) {
        barrier(cb, image, VK_IMAGE_LAYOUT_UNDEFINED, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_QUEUE_FAMILY_IGNORED,
                VK_QUEUE_FAMILY_IGNORED, 0, VK_ACCESS_TRANSFER_WRITE_BIT);
        vkCmdCopyBufferToImage(cb, buffer, image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &region);
        /* Issue 2 of VK_NV_external_memory: GENERAL before another instance uses it. */
        barrier(cb, image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_GENERAL, g->family,
                VK_QUEUE_FAMILY_EXTERNAL_KHR, VK_ACCESS_TRANSFER_WRITE_BIT, 0);
    } else {
        barrier(cb, image, VK_IMAGE_LAYOUT_GENERAL, VK_IMAGE_LAYOUT_GENERAL, VK_QUEUE_FAMILY_EXTERNAL_KHR, g->family, 0,
                VK_ACCESS_TRANSFER_READ_BIT);
        vkCmdCopyImageToBuffer(cb, image, VK_IMAGE_LAYOUT_GENERAL, buffer, 1, &region);
        VkBufferMemoryBarrier host = {.sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
                                      .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT, .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
                                      .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                      .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED, .buffer = buffer, .size = VK_WHOLE_SIZE};
        vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 0, NULL, 1, &host, 0, NULL);
    }
    CHECK(vkEndCommandBuffer(cb));
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence;
    CHECK(vkCreateFence(g->device, &fi, NULL, &fence));
    VkSubmitInfo submit = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    CHECK(vkQueueSubmit(g->queue, 1, &submit, fence));
    CHECK(vkWaitForFences(g->device, 1, &fence, VK_TRUE, UINT64_MAX));
    vkDestroyFence(g->device, fence, NULL);
    vkFreeCommandBuffers(g->device, g->pool, 1, &cb);
    if (!write) memcpy(bytes, mapped, BYTES);
    vkDestroyBuffer(g->device, buffer, NULL);
    vkFreeMemory(g->device, memory, NULL);
}

/* What travels with the descriptor. */
struct header { uint64_t size; uint32_t memory_type; uint32_t bytes; };

static void make_pattern(unsigned char *p) {
    for (int i = 0; i < BYTES; i++) p[i] = (unsigned char)((i * 2654435761u) >> 13);
}

static int produce(const char *path) {
    static unsigned char pattern[BYTES];
    make_pattern(pattern);
    struct gpu g = {0};
    create(&g, "nv_era_client produce");
    VkImage image = nv_image(&g);
    VkMemoryRequirements req;
    vkGetImageMemoryRequirements(g.device, image, &req);
    VkDedicatedAllocationMemoryAllocateInfoNV dedicated = {
        .sType = VK_STRUCTURE_TYPE_DEDICATED_ALLOCATION_MEMORY_ALLOCATE_INFO_NV, .image = image};
    VkExportMemoryAllocateInfoNV export_nv = {.sType = VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO_NV, .pNext = &dedicated,
                                              .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_WIN32_BIT_NV};
    uint32_t type = memory_type(&g, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &export_nv,
                                .allocationSize = req.size, .memoryTypeIndex = type};
    VkDeviceMemory memory;
    CHECK(vkAllocateMemory(g.device, &mai, NULL, &memory));
    CHECK(vkBindImageMemory(g.device, image, memory, 0));
    transfer(&g, image, pattern, 1);
    printf("producer: dedicated NV image %ux%u, %llu bytes (type %u), pattern uploaded\n", W, H,
           (unsigned long long)req.size, type);

    PFN_vkGetMemoryFdKHR get_fd = (PFN_vkGetMemoryFdKHR)vkGetDeviceProcAddr(g.device, "vkGetMemoryFdKHR");
    if (!get_fd) fail("vkGetMemoryFdKHR is missing");
    VkMemoryGetFdInfoKHR gfi = {.sType = VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR, .memory = memory,
                                .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT_KHR};
    int fd = -1;
    CHECK(get_fd(g.device, &gfi, &fd));

    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (listener < 0 || strlen(path) >= sizeof addr.sun_path) fail("socket");
    strcpy(addr.sun_path, path);
    unlink(path);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0) fail("bind/listen");
    printf("producer: exported opaque fd, waiting on %s\n", path);
    fflush(stdout);
    int peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (peer < 0) fail("accept");
    struct header h = {.size = req.size, .memory_type = type, .bytes = BYTES};
    struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(peer, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof h) fail("sendmsg");
    close(fd);
    char verdict = 0;
    if (read(peer, &verdict, 1) != 1) fail("no verdict from the importer");
    close(peer);
    close(listener);
    unlink(path);
    vkDestroyImage(g.device, image, NULL);
    vkFreeMemory(g.device, memory, NULL);
    destroy(&g);
    if (verdict != 'Y') fail("the importer saw other bytes");
    if (validation_messages) { fprintf(stderr, "FAIL: %d validation message(s)\n", validation_messages); return 1; }
    printf("producer: the importer saw the same %d bytes\nPASS\n", BYTES);
    return 0;
}

static int import(const char *path) {
    static unsigned char pattern[BYTES], seen[BYTES];
    make_pattern(pattern);
    struct gpu g = {0};
    create(&g, "nv_era_client import");
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (sock < 0 || strlen(path) >= sizeof addr.sun_path) fail("socket");
    strcpy(addr.sun_path, path);
    /* The producer may still be setting up: try for up to a minute. */
    int tries = 0;
    while (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (++tries > 1200) fail("no producer on the socket");
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    struct header h;
    struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof h) fail("recvmsg");
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) fail("no descriptor came");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);

    VkImage image = nv_image(&g);
    VkMemoryRequirements req;
    vkGetImageMemoryRequirements(g.device, image, &req);
    if (req.size != h.size || h.bytes != BYTES || !(req.memoryTypeBits & (1u << h.memory_type))) {
        close(fd);
        fail("the producer's image does not match this one");
    }
    VkDedicatedAllocationMemoryAllocateInfoNV dedicated = {
        .sType = VK_STRUCTURE_TYPE_DEDICATED_ALLOCATION_MEMORY_ALLOCATE_INFO_NV, .image = image};
    VkImportMemoryFdInfoKHR import_fd = {.sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR, .pNext = &dedicated,
                                         .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT_KHR, .fd = fd};
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &import_fd,
                                .allocationSize = h.size, .memoryTypeIndex = h.memory_type};
    VkDeviceMemory memory;
    VkResult r = vkAllocateMemory(g.device, &mai, NULL, &memory);
    if (r != VK_SUCCESS) { close(fd); CHECK(r); } /* Vulkan owns the descriptor only on success */
    CHECK(vkBindImageMemory(g.device, image, memory, 0));
    transfer(&g, image, seen, 0);
    int same = memcmp(pattern, seen, BYTES) == 0;
    char verdict = same ? 'Y' : 'N';
    if (write(sock, &verdict, 1) != 1) fail("write verdict");
    close(sock);
    vkDestroyImage(g.device, image, NULL);
    vkFreeMemory(g.device, memory, NULL);
    destroy(&g);
    if (!same) fail("the imported image holds other bytes");
    if (validation_messages) { fprintf(stderr, "FAIL: %d validation message(s)\n", validation_messages); return 1; }
    printf("importer: imported the dedicated NV image, %d bytes match\nPASS\n", BYTES);
    return 0;
}

int main(int argc, char **argv) {
    /* Never wait forever on a peer that died: the whole exchange takes seconds. */
    alarm(120);
    if (argc == 3 && strcmp(argv[1], "produce") == 0) return produce(argv[2]);
    if (argc == 3 && strcmp(argv[1], "import") == 0) return import(argv[2]);
    fprintf(stderr, "usage: nv_era_client produce|import SOCKET\n");
    return 2;
}
