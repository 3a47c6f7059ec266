// consumer: a C++17 consumer of extmem's frame protocol, using only include/extmem.h.
//
//   consumer --socket PATH [--frames N]
//
// It connects to a producer (examples/producer.c, or any peer of docs/src/protocol.md),
// imports the shared memory with every check into a context of extmem's own (with the
// Khronos validation layer), and for each FrameReady(n) reads the frame, checks the
// protocol's test pattern for frame n, writes back the pattern of seed n ^ 0x5EED00000000 and
// says FrameDone(n), until Bye. Exit 0 and "PASS" only when every frame matched, at least N
// frames came, and no validation message was seen.
#include "extmem.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// One owner per handle: the deleters call the destroy functions.
struct ContextDeleter {
    void operator()(extmem_context *c) const { extmem_context_destroy(c); }
};
struct ChannelDeleter {
    void operator()(extmem_channel *c) const { extmem_channel_destroy(c); }
};
struct MemoryDeleter {
    void operator()(extmem_memory *m) const { extmem_memory_destroy(m); }
};

void check(extmem_status s, const char *what) {
    if (s != EXTMEM_OK)
        throw std::runtime_error(std::string(what) + ": " + extmem_status_name(s) + ": " + extmem_last_error_message());
}

std::vector<unsigned char> pattern(std::size_t len, std::uint64_t seed) {
    std::vector<unsigned char> out(len);
    const std::uint64_t s = seed * 0xD1B54A32D192ED03ull;
    for (std::size_t k = 0; k < len; k++) {
        const std::uint64_t x = (static_cast<std::uint64_t>(k) * 0x9E3779B97F4A7C15ull) ^ s;
        out[k] = static_cast<unsigned char>(((x >> 29) ^ (x >> 13)) & 0xff);
    }
    return out;
}

template <typename T> T zeroed() {
    T t;
    std::memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    return t;
}

int run(const char *socket, std::uint64_t min_frames) {
    auto options = zeroed<extmem_context_options>();
    options.validation = VK_TRUE;
    options.device_index = -1;
    extmem_context *raw_ctx = nullptr;
    check(extmem_context_create(&options, &raw_ctx), "extmem_context_create");
    std::unique_ptr<extmem_context, ContextDeleter> ctx(raw_ctx);

    extmem_channel *raw_ch = nullptr;
    check(extmem_channel_connect(socket, nullptr, &raw_ch), "extmem_channel_connect");
    std::unique_ptr<extmem_channel, ChannelDeleter> ch(raw_ch);

    extmem_memory *raw_mem = nullptr;
    check(extmem_channel_accept_memory(ch.get(), ctx.get(), &raw_mem), "extmem_channel_accept_memory");
    std::unique_ptr<extmem_memory, MemoryDeleter> memory(raw_mem);
    std::uint64_t size = 0;
    check(extmem_memory_data_size(memory.get(), &size), "extmem_memory_data_size");
    std::vector<unsigned char> data(size);

    std::uint64_t frames = 0;
    for (;;) {
        auto m = std::make_unique<extmem_message>(zeroed<extmem_message>());
        check(extmem_channel_recv(ch.get(), m.get()), "extmem_channel_recv");
        if (m->kind == EXTMEM_MESSAGE_BYE) break;
        if (m->kind != EXTMEM_MESSAGE_FRAME_READY || m->frame != frames) {
            std::fprintf(stderr, "FAIL: message %u (frame %llu) while FrameReady(%llu) was due\n", m->kind,
                         static_cast<unsigned long long>(m->frame), static_cast<unsigned long long>(frames));
            if (m->fd >= 0) std::fprintf(stderr, "(a descriptor came with it)\n");
            return 1;
        }
        check(extmem_memory_read(memory.get(), data.data(), data.size(), nullptr), "extmem_memory_read");
        const auto want = pattern(data.size(), frames);
        for (std::size_t k = 0; k < data.size(); k++) {
            if (data[k] != want[k]) {
                std::fprintf(stderr, "FAIL: frame %llu: byte %zu is %#04x, expected %#04x\n",
                             static_cast<unsigned long long>(frames), k, data[k], want[k]);
                return 1;
            }
        }
        const auto back = pattern(data.size(), frames ^ 0x5EED00000000ull);
        check(extmem_memory_write(memory.get(), back.data(), back.size(), nullptr), "extmem_memory_write");
        check(extmem_frames_signal_done(ch.get(), frames), "extmem_frames_signal_done");
        std::printf("frame %llu: all %zu bytes match; wrote the write-back pattern\n",
                    static_cast<unsigned long long>(frames), data.size());
        frames++;
    }
    memory.reset();
    ch.reset();
    auto info = zeroed<extmem_context_info>();
    check(extmem_context_get_info(ctx.get(), &info), "extmem_context_get_info");
    ctx.reset();
    if (info.validation_messages != 0) {
        std::fprintf(stderr, "FAIL: %u validation message(s)\n", info.validation_messages);
        return 1;
    }
    if (frames < min_frames) {
        std::fprintf(stderr, "FAIL: %llu frame(s), at least %llu expected\n", static_cast<unsigned long long>(frames),
                     static_cast<unsigned long long>(min_frames));
        return 1;
    }
    if (extmem_live_handle_count() != 0) {
        std::fprintf(stderr, "FAIL: extmem handles left\n");
        return 1;
    }
    std::printf("PASS: %llu frames\n", static_cast<unsigned long long>(frames));
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    const char *socket = nullptr;
    std::uint64_t frames = 1;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--socket") == 0 && i + 1 < argc) socket = argv[++i];
        else if (std::strcmp(argv[i], "--frames") == 0 && i + 1 < argc) frames = std::strtoull(argv[++i], nullptr, 10);
        else socket = nullptr, i = argc;
    }
    if (!socket) {
        std::fprintf(stderr, "usage: consumer --socket PATH [--frames N]\n");
        return 2;
    }
    try {
        return run(socket, frames);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "FAIL: %s\n", e.what());
        return 1;
    }
}
