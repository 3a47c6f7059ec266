/*
 * borrowed_test: extmem_context_create_borrowed from a C11 program with its own instance
 * and devices (validation layer on, every message a failure).
 *
 * Refused, naming what is wrong: NULL vkGetInstanceProcAddr, NULL handles, an instance of
 * apiVersion 1.0, a device without VK_KHR_external_memory_fd, one queue callback without the
 * other, a short struct_size. Record-only (no queue callbacks): extmem never submits (a write
 * is EXTMEM_ERROR_UNSUPPORTED saying what to do), while the barriers it records into the
 * application's command buffer run. With callbacks: extmem's writes call them, balanced.
 * The application destroys its device after extmem, which never destroys it.
 */
#include "extmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, validation_messages, locks, unlocks;

#define EXPECT(cond, ...)                                                            \
    do {                                                                             \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "FAIL line %d: %s: ", __LINE__, #cond);                  \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, " (last error: %s)\n", extmem_last_error_message());     \
        }                                                                            \
    } while (0)

#define VK(call)                                                                      \
    do {                                                                              \
        VkResult r_ = (call);                                                         \
        if (r_ != VK_SUCCESS) {                                                       \
            fprintf(stderr, "FAIL: %s returned %d (line %d)\n", #call, r_, __LINE__); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)user;
    (void)severity;
    if (types & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT) {
        validation_messages++;
        fprintf(stderr, "validation: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

static void lock(void *user) { locks += user == &locks; }
static void unlock(void *user) { unlocks += user == &locks; }

static int has(const char *text, const char *part) { return strstr(text, part) != NULL; }

static VkDevice make_device(VkPhysicalDevice pd, int with_fd, VkQueue *queue) {
    const char *ext[] = {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME};
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qi = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, NULL, 0, 0, 1, &priority};
    VkDeviceCreateInfo di = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, NULL, 0, 1, &qi, 0, NULL,
                             with_fd ? 1u : 0u, with_fd ? ext : NULL, NULL};
    VkDevice device;
    VK(vkCreateDevice(pd, &di, NULL, &device));
    vkGetDeviceQueue(device, 0, 0, queue);
    return device;
}

int main(void) {
    VkApplicationInfo ai = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "borrowed_test", 1, NULL, 0, VK_API_VERSION_1_1};
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    const char *iext[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT mi;
    memset(&mi, 0, sizeof mi);
    mi.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
    mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT;
    mi.pfnUserCallback = on_message;
    VkInstanceCreateInfo ii = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, &mi, 0, &ai, 1, layers, 1, iext};
    VkInstance instance;
    VK(vkCreateInstance(&ii, NULL, &instance));
    /* The pNext messenger covers vkCreateInstance / vkDestroyInstance only: this one the rest. */
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT");
    VkDebugUtilsMessengerEXT messenger;
    VK(create_messenger(instance, &mi, NULL, &messenger));
    uint32_t n = 1;
    VkPhysicalDevice pd;
    VkResult r = vkEnumeratePhysicalDevices(instance, &n, &pd);
    EXPECT((r == VK_SUCCESS || r == VK_INCOMPLETE) && n == 1, "a device");
    /* Family 0 has graphics on lavapipe and on the GPUs this runs on. */
    VkQueue queue, plain_queue;
    VkDevice device = make_device(pd, 1, &queue);
    VkDevice plain = make_device(pd, 0, &plain_queue);

    const char *names[] = {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME};
    extmem_app_device app;
    memset(&app, 0, sizeof app);
    app.struct_size = sizeof app;
    app.get_instance_proc_addr = vkGetInstanceProcAddr;
    app.instance = instance;
    app.api_version = VK_API_VERSION_1_1;
    app.physical_device = pd;
    app.device = device;
    app.queue_family_index = 0;
    app.queue = queue;
    app.enabled_extension_count = 1;
    app.enabled_extension_names = names;

    extmem_context *ctx = (extmem_context *)1;
    extmem_app_device bad = app;
    bad.get_instance_proc_addr = NULL;
    EXPECT(extmem_context_create_borrowed(&bad, &ctx) == EXTMEM_ERROR_INVALID_ARGUMENT && ctx == NULL, "no gipa");
    EXPECT(has(extmem_last_error_message(), "get_instance_proc_addr is NULL"), "named");
    bad = app;
    bad.device = VK_NULL_HANDLE;
    EXPECT(extmem_context_create_borrowed(&bad, &ctx) == EXTMEM_ERROR_INVALID_ARGUMENT, "no device");
    EXPECT(has(extmem_last_error_message(), "app->device is VK_NULL_HANDLE"), "named");
    bad = app;
    bad.api_version = VK_API_VERSION_1_0;
    EXPECT(extmem_context_create_borrowed(&bad, &ctx) == EXTMEM_ERROR_UNSUPPORTED, "1.0");
    EXPECT(has(extmem_last_error_message(), "1.1"), "named");
    bad = app;
    bad.struct_size = 8;
    EXPECT(extmem_context_create_borrowed(&bad, &ctx) == EXTMEM_ERROR_INVALID_ARGUMENT, "struct_size");
    bad = app;
    bad.lock_queue = lock;
    EXPECT(extmem_context_create_borrowed(&bad, &ctx) == EXTMEM_ERROR_INVALID_ARGUMENT, "lock without unlock");
    bad = app;
    bad.enabled_extension_count = 2;
    const char *with_null[] = {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME, NULL};
    bad.enabled_extension_names = with_null;
    EXPECT(extmem_context_create_borrowed(&bad, &ctx) == EXTMEM_ERROR_INVALID_ARGUMENT, "a NULL name");
    bad = app;
    bad.device = plain;
    bad.queue = plain_queue;
    bad.enabled_extension_count = 0;
    EXPECT(extmem_context_create_borrowed(&bad, &ctx) == EXTMEM_ERROR_UNSUPPORTED, "no external memory fd");
    EXPECT(has(extmem_last_error_message(), "VK_KHR_external_memory_fd"), "named");

    /* Record-only: extmem does not submit, but records into the application's commands. */
    EXPECT(extmem_context_create_borrowed(&app, &ctx) == EXTMEM_OK, "record-only");
    extmem_memory_options mo;
    memset(&mo, 0, sizeof mo);
    mo.struct_size = sizeof mo;
    mo.resource.kind = EXTMEM_RESOURCE_BUFFER;
    mo.resource.buffer.size = 4096;
    mo.resource.buffer.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    extmem_memory *m = NULL;
    EXPECT(extmem_memory_create(ctx, &mo, &m) == EXTMEM_OK, "an exportable buffer");
    static unsigned char bytes[4096];
    EXPECT(extmem_memory_write(m, bytes, sizeof bytes, NULL) == EXTMEM_ERROR_UNSUPPORTED, "no submission");
    EXPECT(has(extmem_last_error_message(), "record"), "says what to do instead");
    VkCommandPoolCreateInfo pi = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, NULL, 0, 0};
    VkCommandPool pool;
    VK(vkCreateCommandPool(device, &pi, NULL, &pool));
    VkCommandBufferAllocateInfo ci = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, NULL, pool,
                                      VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    VkCommandBuffer cb;
    VK(vkAllocateCommandBuffers(device, &ci, &cb));
    VkCommandBufferBeginInfo bi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, NULL, 0, NULL};
    VK(vkBeginCommandBuffer(cb, &bi));
    EXPECT(extmem_memory_record_acquire(m, cb, VK_FALSE, VK_IMAGE_LAYOUT_UNDEFINED, VK_ACCESS_TRANSFER_WRITE_BIT,
                                        VK_PIPELINE_STAGE_TRANSFER_BIT) == EXTMEM_OK, "acquire");
    vkCmdFillBuffer(cb, extmem_memory_vk_buffer(m), 0, VK_WHOLE_SIZE, 0x2a2a2a2a);
    EXPECT(extmem_memory_record_release(m, cb, VK_IMAGE_LAYOUT_UNDEFINED, VK_ACCESS_TRANSFER_WRITE_BIT,
                                        VK_PIPELINE_STAGE_TRANSFER_BIT) == EXTMEM_OK, "release");
    /* An image: taken from fresh into TRANSFER_DST, cleared, released in GENERAL. */
    extmem_memory_options io;
    memset(&io, 0, sizeof io);
    io.struct_size = sizeof io;
    io.resource.kind = EXTMEM_RESOURCE_IMAGE;
    io.resource.image = (extmem_image_desc){VK_FORMAT_R8G8B8A8_UNORM, 32, 16, 1, 1, 1, VK_IMAGE_TILING_OPTIMAL,
                                            VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT};
    extmem_memory *img = NULL;
    EXPECT(extmem_memory_create(ctx, &io, &img) == EXTMEM_OK, "an exportable image");
    EXPECT(extmem_memory_record_acquire(img, cb, VK_FALSE, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                        VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT) == EXTMEM_OK,
           "image acquire");
    VkClearColorValue color = {{0.25f, 0.5f, 0.75f, 1.0f}};
    VkImageSubresourceRange range = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
    vkCmdClearColorImage(cb, extmem_memory_vk_image(img), VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, &color, 1, &range);
    EXPECT(extmem_memory_record_release(img, cb, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_ACCESS_TRANSFER_WRITE_BIT,
                                        VK_PIPELINE_STAGE_TRANSFER_BIT) == EXTMEM_OK, "image release");
    EXPECT(extmem_memory_record_acquire(m, VK_NULL_HANDLE, VK_FALSE, VK_IMAGE_LAYOUT_UNDEFINED, 0,
                                        VK_PIPELINE_STAGE_TRANSFER_BIT) == EXTMEM_ERROR_INVALID_ARGUMENT, "NULL cb");
    VK(vkEndCommandBuffer(cb));
    VkSubmitInfo si = {VK_STRUCTURE_TYPE_SUBMIT_INFO, NULL, 0, NULL, NULL, 1, &cb, 0, NULL};
    VK(vkQueueSubmit(queue, 1, &si, VK_NULL_HANDLE));
    VK(vkQueueWaitIdle(queue));
    extmem_memory_destroy(img);
    extmem_memory_destroy(m);
    extmem_context_destroy(ctx);

    /* With the queue callbacks: every submission of extmem's is bracketed by them. */
    app.lock_queue = lock;
    app.unlock_queue = unlock;
    app.queue_user_data = &locks;
    EXPECT(extmem_context_create_borrowed(&app, &ctx) == EXTMEM_OK, "with callbacks");
    EXPECT(extmem_memory_create(ctx, &mo, &m) == EXTMEM_OK, "a buffer");
    memset(bytes, 7, sizeof bytes);
    EXPECT(extmem_memory_write(m, bytes, sizeof bytes, NULL) == EXTMEM_OK, "a write");
    static unsigned char back[4096];
    EXPECT(extmem_memory_read(m, back, sizeof back, NULL) == EXTMEM_OK, "a read");
    EXPECT(memcmp(bytes, back, sizeof back) == 0, "the bytes");
    EXPECT(locks >= 2 && locks == unlocks, "%d locks, %d unlocks", locks, unlocks);
    extmem_context_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT(extmem_context_get_info(ctx, &info) == EXTMEM_OK && info.owns_device == VK_FALSE && info.device == device,
           "borrowed, on the application's device");
    /* The context handle goes first; the memory keeps it; neither destroys the device. */
    extmem_context_destroy(ctx);
    extmem_memory_destroy(m);
    EXPECT(extmem_live_handle_count() == 0, "handles left");

    vkDestroyCommandPool(device, pool, NULL);
    vkDestroyDevice(plain, NULL);
    vkDestroyDevice(device, NULL);
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT");
    destroy_messenger(instance, messenger, NULL);
    vkDestroyInstance(instance, NULL);
    EXPECT(validation_messages == 0, "%d validation message(s)", validation_messages);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
