// Verilator harness for an nnfpga RTL top (compiled with --prefix Vtop).
//
//   harness IN.bin OUT.bin N_SAMPLES LATENCY IN_BITS OUT_BITS IDLE_PERMILLE SEED II
//
// IN.bin holds N_SAMPLES in_data words, each ceil(IN_BITS/32) little-endian uint32
// (element 0 in the least significant bits).  After a few reset cycles the harness
// presents the samples as close as the initiation interval allows: a sample, then II - 1
// cycles with in_valid low (II = 1: back to back); with IDLE_PERMILLE > 0 it also leaves
// in_valid low on a pseudo-random fraction of the cycles when it could send (and puts
// junk on in_data whenever in_valid is low).  It checks, cycle by cycle, that out_valid is high
// exactly LATENCY cycles after each in_valid and at no other time, and stores out_data
// at every out_valid into OUT.bin (ceil(OUT_BITS/32) uint32 per sample).
// Any violation: a message on stderr and exit status 1.  On success it prints
// "cycles=<n> seconds=<t>" on stdout.

#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

template <typename T>
static void set_port(T& port, const uint32_t* w, std::size_t nw) {
    uint64_t v = 0;
    for (std::size_t i = 0; i < nw && i < 2; ++i) v |= static_cast<uint64_t>(w[i]) << (32 * i);
    port = static_cast<T>(v);
}
template <std::size_t N>
static void set_port(VlWide<N>& port, const uint32_t* w, std::size_t nw) {
    for (std::size_t i = 0; i < N; ++i) port[i] = i < nw ? w[i] : 0;
}
template <typename T>
static void get_port(const T& port, uint32_t* w, std::size_t nw) {
    const uint64_t v = static_cast<uint64_t>(port);
    for (std::size_t i = 0; i < nw; ++i) w[i] = i < 2 ? static_cast<uint32_t>(v >> (32 * i)) : 0;
}
template <std::size_t N>
static void get_port(const VlWide<N>& port, uint32_t* w, std::size_t nw) {
    for (std::size_t i = 0; i < nw; ++i) w[i] = i < N ? port[i] : 0;
}
template <typename T>
static std::size_t port_bits(const T&) { return 8 * sizeof(T); }
template <std::size_t N>
static std::size_t port_bits(const VlWide<N>&) { return 32 * N; }

[[noreturn]] static void fail(const char* msg, unsigned long long a = 0, unsigned long long b = 0,
                              unsigned long long c = 0) {
    std::fprintf(stderr, "harness: ");
    std::fprintf(stderr, msg, a, b, c);
    std::fprintf(stderr, "\n");
    std::exit(1);
}

int main(int argc, char** argv) {
    if (argc != 10) fail("usage: harness IN.bin OUT.bin N LATENCY IN_BITS OUT_BITS IDLE_PERMILLE SEED II");
    const char* in_path = argv[1];
    const char* out_path = argv[2];
    const std::size_t n = std::strtoull(argv[3], nullptr, 10);
    const uint64_t latency = std::strtoull(argv[4], nullptr, 10);
    const std::size_t in_bits = std::strtoull(argv[5], nullptr, 10);
    const std::size_t out_bits = std::strtoull(argv[6], nullptr, 10);
    const unsigned idle_permille = static_cast<unsigned>(std::strtoul(argv[7], nullptr, 10));
    uint64_t rng = std::strtoull(argv[8], nullptr, 10) * 0x9E3779B97F4A7C15ull + 1;
    const uint64_t ii = std::strtoull(argv[9], nullptr, 10);
    if (ii < 1) fail("the initiation interval must be at least 1");
    const std::size_t in_words = (in_bits + 31) / 32, out_words = (out_bits + 31) / 32;
    if (latency < 1) fail("latency must be at least 1");

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    top->clk = 0;
    top->eval();
    if (port_bits(top->in_data) < in_bits || port_bits(top->in_data) >= in_bits + 32)
        fail("in_data port holds %llu bits, expected %llu", port_bits(top->in_data), in_bits);
    if (port_bits(top->out_data) < out_bits || port_bits(top->out_data) >= out_bits + 32)
        fail("out_data port holds %llu bits, expected %llu", port_bits(top->out_data), out_bits);

    std::vector<uint32_t> in(n * in_words), out(n * out_words, 0), junk(in_words, 0xA5A5A5A5u);
    if (in_bits % 32) junk[in_words - 1] &= (1u << (in_bits % 32)) - 1;
    {
        FILE* f = std::fopen(in_path, "rb");
        if (!f) fail("cannot open the input file");
        const std::size_t got = std::fread(in.data(), 4, in.size(), f);
        std::fclose(f);
        if (got != in.size()) fail("input file holds %llu words, expected %llu", got, in.size());
    }

    // One rising edge.  The inputs are set before the call; Verilator settles the logic
    // they feed before it runs the clocked processes of the same eval, so the edge
    // captures them.  The falling half triggers nothing (all logic is posedge).
    auto tick = [&]() {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    };
    top->rst = 1;
    top->in_valid = 0;
    set_port(top->in_data, junk.data(), in_words);
    for (int i = 0; i < 4; ++i) tick();
    top->rst = 0;
    tick();
    if (top->out_valid) fail("out_valid is high after reset with no input");

    std::vector<uint64_t> sent_cycle(n);
    std::size_t sent = 0, got = 0;
    uint64_t cycle = 0;  // the cycle whose rising edge comes next
    const uint64_t limit = (ii + 1) * n + 1000 * (latency + 10);
    const auto t0 = std::chrono::steady_clock::now();
    while (got < n || cycle < (n ? sent_cycle[n - 1] : 0) + latency + 3) {
        bool drive = sent < n && (sent == 0 || cycle >= sent_cycle[sent - 1] + ii);
        if (drive && idle_permille) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            drive = (rng % 1000) >= idle_permille;
        }
        top->in_valid = drive;
        set_port(top->in_data, drive ? &in[sent * in_words] : junk.data(), in_words);
        if (drive) sent_cycle[sent++] = cycle;
        tick();
        // After this edge the outputs belong to cycle + 1: a sample presented in cycle c
        // must appear in cycle c + LATENCY.
        const bool expect = got < sent && sent_cycle[got] + latency == cycle + 1;
        if (static_cast<bool>(top->out_valid) != expect) {
            if (expect)
                fail("sample %llu entered in cycle %llu but out_valid is low in cycle %llu",
                     got, sent_cycle[got], cycle + 1);
            fail("out_valid is high in cycle %llu, no sample is due then (%llu out of %llu in)",
                 cycle + 1, got, sent);
        }
        if (expect) {
            get_port(top->out_data, &out[got * out_words], out_words);
            ++got;
        }
        if (++cycle > limit) fail("simulation did not finish within %llu cycles", limit);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    top->final();

    FILE* f = std::fopen(out_path, "wb");
    if (!f) fail("cannot open the output file");
    if (std::fwrite(out.data(), 4, out.size(), f) != out.size()) fail("cannot write the outputs");
    std::fclose(f);
    std::printf("cycles=%llu seconds=%.6f\n", static_cast<unsigned long long>(cycle), secs);
    return 0;
}
