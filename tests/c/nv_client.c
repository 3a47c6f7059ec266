/*
 * nv_client: an application written only against the Vulkan headers and the
 * VK_NV_external_memory(_capabilities) specification, the way a real NV user would
 * write it. It knows nothing of extmem.
 *
 *   nv_client            query, create an NV-exportable image + memory, upload a pattern,
 *                        read it back, move the image to GENERAL for another API (issue 2)
 *   nv_client --export   also export the memory with vkGetMemoryFdKHR (the Linux backing
 *                        of NV's opaque Win32 handles, a step beyond the NV specification;
 *                        the client enables VK_KHR_external_memory_fd for it, as a Linux port
 *                        of an NV application would) and check the bytes in a second
 *                        VkInstance that imports it
 *   --require-global     fail unless VK_NV_external_memory_capabilities is in the global
 *                        extension list (as an application that checks only that list needs)
 *   --layer NAME         name a layer in ppEnabledLayerNames of the first instance (an
 *                        application that enables the layer itself)
 *
 * Exit status 0 only when every step worked and no validation message was seen.
 */
#include <vulkan/vulkan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W 64
#define H 32
#define BYTES (W * H * 4)

static int validation_messages;
static const char *app_layer; /* --layer */

#define CHECK(call)                                                              \
    do {                                                                         \
        VkResult r_ = (call);                                                    \
        if (r_ != VK_SUCCESS) {                                                  \
            fprintf(stderr, "FAIL: %s returned %d (line %d)\n", #call, r_, __LINE__); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user) {
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

static int has_extension(const VkExtensionProperties *list, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(list[i].extensionName, name) == 0) return 1;
    return 0;
}

/* Where does VK_NV_external_memory_capabilities come from: the global list or a layer's? */
static void report_capabilities_source(int require_global) {
    uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
    VkExtensionProperties *list = calloc(n, sizeof *list);
    vkEnumerateInstanceExtensionProperties(NULL, &n, list);
    int found = has_extension(list, n, VK_NV_EXTERNAL_MEMORY_CAPABILITIES_EXTENSION_NAME);
    free(list);
    if (found) printf("VK_NV_external_memory_capabilities is in the global extension list\n");
    if (require_global && !found) {
        fprintf(stderr, "FAIL: VK_NV_external_memory_capabilities is not in the global extension list\n");
        exit(1);
    }
    uint32_t layers = 0;
    vkEnumerateInstanceLayerProperties(&layers, NULL);
    VkLayerProperties *lp = calloc(layers, sizeof *lp);
    vkEnumerateInstanceLayerProperties(&layers, lp);
    for (uint32_t i = 0; i < layers && !found; i++) {
        uint32_t m = 0;
        vkEnumerateInstanceExtensionProperties(lp[i].layerName, &m, NULL);
        VkExtensionProperties *l = calloc(m, sizeof *l);
        vkEnumerateInstanceExtensionProperties(lp[i].layerName, &m, l);
        if (has_extension(l, m, VK_NV_EXTERNAL_MEMORY_CAPABILITIES_EXTENSION_NAME)) {
            printf("VK_NV_external_memory_capabilities offered by layer %s\n", lp[i].layerName);
            found = 1;
        }
        free(l);
    }
    free(lp);
    if (!found) {
        fprintf(stderr, "FAIL: no driver or layer offers VK_NV_external_memory_capabilities\n");
        exit(1);
    }
}

static void create_instance(struct gpu *g, int nv) {
    const char *exts[2];
    uint32_t n = 0;
    if (nv) exts[n++] = VK_NV_EXTERNAL_MEMORY_CAPABILITIES_EXTENSION_NAME;
    exts[n++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    VkDebugUtilsMessengerCreateInfoEXT messenger = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
        .pfnUserCallback = on_message,
    };
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "nv_client",
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = &messenger,
                               .pApplicationInfo = &app, .enabledExtensionCount = n, .ppEnabledExtensionNames = exts};
    if (nv && app_layer) {
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = &app_layer;
    }
    VkResult r = vkCreateInstance(&ci, NULL, &g->instance);
    if (r == VK_ERROR_EXTENSION_NOT_PRESENT) { /* no validation layer enabled: no debug utils */
        ci.pNext = NULL;
        ci.enabledExtensionCount = n - 1;
        r = vkCreateInstance(&ci, NULL, &g->instance);
        g->messenger = VK_NULL_HANDLE;
    } else if (r == VK_SUCCESS) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            g->instance, "vkCreateDebugUtilsMessengerEXT");
        CHECK(create(g->instance, &messenger, NULL, &g->messenger));
    }
    CHECK(r);
    uint32_t count = 1;
    r = vkEnumeratePhysicalDevices(g->instance, &count, &g->pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || count == 0) { fprintf(stderr, "FAIL: no Vulkan device\n"); exit(1); }
    vkGetPhysicalDeviceMemoryProperties(g->pd, &g->mem);
}

static void create_device(struct gpu *g, const char *ext, const char *optional) {
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(g->pd, NULL, &n, NULL);
    VkExtensionProperties *list = calloc(n, sizeof *list);
    vkEnumerateDeviceExtensionProperties(g->pd, NULL, &n, list);
    if (!has_extension(list, n, ext)) { fprintf(stderr, "FAIL: the device lacks %s\n", ext); exit(1); }
    const char *exts[2] = {ext, optional};
    uint32_t ext_count = optional && has_extension(list, n, optional) ? 2 : 1;
    free(list);
    uint32_t families = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(g->pd, &families, NULL);
    VkQueueFamilyProperties qf[16];
    if (families > 16) families = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(g->pd, &families, qf);
    g->family = 0;
    for (uint32_t i = 0; i < families; i++)
        if (qf[i].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) { g->family = i; break; }
    float priority = 1.0f;
    VkDeviceQueueCreateInfo q = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = g->family,
                                 .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &q, .enabledExtensionCount = ext_count, .ppEnabledExtensionNames = exts};
    CHECK(vkCreateDevice(g->pd, &ci, NULL, &g->device));
    vkGetDeviceQueue(g->device, g->family, 0, &g->queue);
    VkCommandPoolCreateInfo pool = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = g->family};
    CHECK(vkCreateCommandPool(g->device, &pool, NULL, &g->pool));
}

static uint32_t memory_type(struct gpu *g, uint32_t bits, VkMemoryPropertyFlags flags) {
    for (uint32_t i = 0; i < g->mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (g->mem.memoryTypes[i].propertyFlags & flags) == flags) return i;
    fprintf(stderr, "FAIL: no memory type\n");
    exit(1);
}

static VkImageCreateInfo image_info(const void *next) {
    VkImageCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO, .pNext = next, .imageType = VK_IMAGE_TYPE_2D,
                            .format = VK_FORMAT_R8G8B8A8_UNORM, .extent = {W, H, 1}, .mipLevels = 1, .arrayLayers = 1,
                            .samples = VK_SAMPLE_COUNT_1_BIT, .tiling = VK_IMAGE_TILING_OPTIMAL,
                            .usage = VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT,
                            .sharingMode = VK_SHARING_MODE_EXCLUSIVE, .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED};
    return ci;
}

/* A mapped staging buffer. */
struct staging { VkBuffer buffer; VkDeviceMemory memory; unsigned char *bytes; };

static struct staging staging_new(struct gpu *g, VkBufferUsageFlags usage) {
    struct staging s;
    VkBufferCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = BYTES, .usage = usage};
    CHECK(vkCreateBuffer(g->device, &ci, NULL, &s.buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(g->device, s.buffer, &req);
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                               .memoryTypeIndex = memory_type(g, req.memoryTypeBits,
                                   VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)};
    CHECK(vkAllocateMemory(g->device, &ai, NULL, &s.memory));
    CHECK(vkBindBufferMemory(g->device, s.buffer, s.memory, 0));
    CHECK(vkMapMemory(g->device, s.memory, 0, BYTES, 0, (void **)&s.bytes));
    return s;
}

static void staging_free(struct gpu *g, struct staging *s) {
    vkDestroyBuffer(g->device, s->buffer, NULL);
    vkFreeMemory(g->device, s->memory, NULL);
}

static void barrier(VkCommandBuffer cb, VkImage image, VkImageLayout from, VkImageLayout to, uint32_t src_family,
                    uint32_t dst_family, VkAccessFlags src, VkAccessFlags dst) {
    VkImageMemoryBarrier b = {.sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, .srcAccessMask = src, .dstAccessMask = dst,
                              .oldLayout = from, .newLayout = to, .srcQueueFamilyIndex = src_family,
                              .dstQueueFamilyIndex = dst_family, .image = image,
                              .subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 0, NULL, 0,
                         NULL, 1, &b);
}

/* Upload (write = 1) or read back (write = 0) the image's bytes. An upload leaves the image in
 * GENERAL released to VK_QUEUE_FAMILY_EXTERNAL; a read acquires it from there first. */
static void transfer(struct gpu *g, VkImage image, unsigned char *bytes, int write) {
    struct staging s = staging_new(g, write ? VK_BUFFER_USAGE_TRANSFER_SRC_BIT : VK_BUFFER_USAGE_TRANSFER_DST_BIT);
    if (write) memcpy(s.bytes, bytes, BYTES);
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = g->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    VkCommandBuffer cb;
    CHECK(vkAllocateCommandBuffers(g->device, &ai, &cb));
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    CHECK(vkBeginCommandBuffer(cb, &begin));
    VkBufferImageCopy region = {.imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, .imageExtent = {W, H, 1}};
    if (write) {
        barrier(cb, image, VK_IMAGE_LAYOUT_UNDEFINED, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_QUEUE_FAMILY_IGNORED,
                VK_QUEUE_FAMILY_IGNORED, 0, VK_ACCESS_TRANSFER_WRITE_BIT);
        vkCmdCopyBufferToImage(cb, s.buffer, image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &region);
        /* Issue 2 of VK_NV_external_memory: GENERAL before another API uses it. */
        barrier(cb, image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_GENERAL, g->family,
                VK_QUEUE_FAMILY_EXTERNAL, VK_ACCESS_TRANSFER_WRITE_BIT, 0);
    } else {
        barrier(cb, image, VK_IMAGE_LAYOUT_GENERAL, VK_IMAGE_LAYOUT_GENERAL, VK_QUEUE_FAMILY_EXTERNAL, g->family, 0,
                VK_ACCESS_TRANSFER_READ_BIT);
        vkCmdCopyImageToBuffer(cb, image, VK_IMAGE_LAYOUT_GENERAL, s.buffer, 1, &region);
        VkBufferMemoryBarrier host = {.sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
                                      .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT, .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
                                      .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                      .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED, .buffer = s.buffer, .size = VK_WHOLE_SIZE};
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
    if (!write) memcpy(bytes, s.bytes, BYTES);
    staging_free(g, &s);
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

int main(int argc, char **argv) {
    int export = 0, require_global = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--export") == 0) export = 1;
        else if (strcmp(argv[i], "--require-global") == 0) require_global = 1;
        else if (strcmp(argv[i], "--layer") == 0 && i + 1 < argc) app_layer = argv[++i];
        else { fprintf(stderr, "usage: nv_client [--export] [--require-global] [--layer NAME]\n"); return 2; }
    }
    static unsigned char pattern[BYTES], seen[BYTES];
    for (int i = 0; i < BYTES; i++) pattern[i] = (unsigned char)((i * 2654435761u) >> 13);

    report_capabilities_source(require_global);
    struct gpu a = {0};
    create_instance(&a, 1);

    /* 1. Ask what the NV extension supports for our image. */
    PFN_vkGetPhysicalDeviceExternalImageFormatPropertiesNV query =
        (PFN_vkGetPhysicalDeviceExternalImageFormatPropertiesNV)vkGetInstanceProcAddr(
            a.instance, "vkGetPhysicalDeviceExternalImageFormatPropertiesNV");
    if (!query) { fprintf(stderr, "FAIL: vkGetPhysicalDeviceExternalImageFormatPropertiesNV is missing\n"); return 1; }
    VkImageCreateInfo probe = image_info(NULL);
    VkExternalImageFormatPropertiesNV props;
    CHECK(query(a.pd, probe.format, probe.imageType, probe.tiling, probe.usage, 0,
                VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_WIN32_BIT_NV, &props));
    printf("query: features 0x%x, compatible handle types 0x%x, max extent %ux%u\n", props.externalMemoryFeatures,
           props.compatibleHandleTypes, props.imageFormatProperties.maxExtent.width,
           props.imageFormatProperties.maxExtent.height);
    if (!(props.externalMemoryFeatures & VK_EXTERNAL_MEMORY_FEATURE_EXPORTABLE_BIT_NV) ||
        !(props.compatibleHandleTypes & VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_WIN32_BIT_NV)) {
        fprintf(stderr, "FAIL: the image is not exportable as OPAQUE_WIN32\n");
        return 1;
    }

    /* 2. An exportable image and memory, as the extension defines them. */
    create_device(&a, VK_NV_EXTERNAL_MEMORY_EXTENSION_NAME, export ? VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME : NULL);
    VkExternalMemoryImageCreateInfoNV nv_image = {.sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO_NV,
                                                  .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_WIN32_BIT_NV};
    VkImageCreateInfo ici = image_info(&nv_image);
    VkImage image;
    CHECK(vkCreateImage(a.device, &ici, NULL, &image));
    VkMemoryRequirements req;
    vkGetImageMemoryRequirements(a.device, image, &req);
    VkExportMemoryAllocateInfoNV nv_export = {.sType = VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO_NV,
                                              .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_WIN32_BIT_NV};
    uint32_t type = memory_type(&a, req.memoryTypeBits, 0);
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &nv_export,
                                .allocationSize = req.size, .memoryTypeIndex = type};
    VkDeviceMemory memory;
    CHECK(vkAllocateMemory(a.device, &mai, NULL, &memory));
    CHECK(vkBindImageMemory(a.device, image, memory, 0));
    printf("created an exportable %ux%u image, %llu bytes of memory (type %u)\n", W, H, (unsigned long long)req.size, type);

    /* 3. Use it: write a pattern, move to GENERAL for the other side, read it back. */
    transfer(&a, image, pattern, 1);
    transfer(&a, image, seen, 0);
    if (memcmp(pattern, seen, BYTES) != 0) { fprintf(stderr, "FAIL: read back differs\n"); return 1; }
    printf("pattern written and read back: %d bytes match\n", BYTES);

    if (export) {
        /* 4. Export (Linux backing of the opaque Win32 handle) and import in a second instance. */
        PFN_vkGetMemoryFdKHR get_fd = (PFN_vkGetMemoryFdKHR)vkGetDeviceProcAddr(a.device, "vkGetMemoryFdKHR");
        if (!get_fd) { fprintf(stderr, "FAIL: vkGetMemoryFdKHR is missing\n"); return 1; }
        VkMemoryGetFdInfoKHR gfi = {.sType = VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR, .memory = memory,
                                    .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT};
        int fd = -1;
        CHECK(get_fd(a.device, &gfi, &fd));
        printf("exported opaque fd %d\n", fd);

        struct gpu b = {0};
        create_instance(&b, 0);
        create_device(&b, VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME, NULL);
        VkExternalMemoryImageCreateInfo ext = {.sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
                                               .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT};
        VkImageCreateInfo bici = image_info(&ext);
        VkImage imported;
        CHECK(vkCreateImage(b.device, &bici, NULL, &imported));
        VkImportMemoryFdInfoKHR import = {.sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR,
                                          .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT, .fd = fd};
        VkMemoryAllocateInfo bai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &import,
                                    .allocationSize = req.size, .memoryTypeIndex = type};
        VkDeviceMemory bmem;
        VkResult r = vkAllocateMemory(b.device, &bai, NULL, &bmem);
        if (r != VK_SUCCESS) { close(fd); CHECK(r); } /* Vulkan owns the fd only on success */
        CHECK(vkBindImageMemory(b.device, imported, bmem, 0));
        memset(seen, 0, BYTES);
        transfer(&b, imported, seen, 0);
        if (memcmp(pattern, seen, BYTES) != 0) { fprintf(stderr, "FAIL: the importer sees other bytes\n"); return 1; }
        printf("second instance imported the memory: %d bytes match\n", BYTES);
        vkDestroyImage(b.device, imported, NULL);
        vkFreeMemory(b.device, bmem, NULL);
        destroy(&b);
    }

    vkDestroyImage(a.device, image, NULL);
    vkFreeMemory(a.device, memory, NULL);
    destroy(&a);
    if (validation_messages) { fprintf(stderr, "FAIL: %d validation message(s)\n", validation_messages); return 1; }
    printf("PASS\n");
    return 0;
}
