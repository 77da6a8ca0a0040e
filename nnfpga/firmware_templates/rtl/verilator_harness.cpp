// Verilator harness for an nnfpga RTL top (compiled with --prefix Vtop).
//
//   harness IN.bin OUT.bin N_SAMPLES LATENCY IN_BITS OUT_BITS IDLE_PERMILLE SEED II [STREAMS]
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
// "cycles=<n> seconds=<t>" on stdout (cycles: of the longest stream; seconds: wall time).
//
// STREAMS (default 1): the samples are cut into that many consecutive chunks, each
// streamed through its own instance of the model (its own VerilatedContext) in its own
// thread -- independent copies of the same circuit, each checked cycle by cycle as
// above, so a multi-core machine simulates that many samples at once.

#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

static std::mutex fail_mutex;

[[noreturn]] static void fail(const char* msg, unsigned long long a = 0, unsigned long long b = 0,
                              unsigned long long c = 0) {
    std::lock_guard<std::mutex> lock(fail_mutex);  // one message, even from several streams
    std::fprintf(stderr, "harness: ");
    std::fprintf(stderr, msg, a, b, c);
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
    std::_Exit(1);
}

struct Stream {
    const uint32_t* in;   // n * in_words
    uint32_t* out;        // n * out_words
    std::size_t n;
    uint64_t rng;
    uint64_t cycles = 0;
};

struct Config {
    uint64_t latency, ii;
    std::size_t in_bits, out_bits, in_words, out_words;
    unsigned idle_permille;
};

// One model instance streams its chunk: reset, then the samples, checked cycle by cycle.
static void run_stream(const Config& c, Stream& st) {
    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    top->clk = 0;
    top->eval();
    if (port_bits(top->in_data) < c.in_bits || port_bits(top->in_data) >= c.in_bits + 32)
        fail("in_data port holds %llu bits, expected %llu", port_bits(top->in_data), c.in_bits);
    if (port_bits(top->out_data) < c.out_bits || port_bits(top->out_data) >= c.out_bits + 32)
        fail("out_data port holds %llu bits, expected %llu", port_bits(top->out_data), c.out_bits);
    std::vector<uint32_t> junk(c.in_words, 0xA5A5A5A5u);
    if (c.in_bits % 32) junk[c.in_words - 1] &= (1u << (c.in_bits % 32)) - 1;

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
    set_port(top->in_data, junk.data(), c.in_words);
    for (int i = 0; i < 4; ++i) tick();
    top->rst = 0;
    tick();
    if (top->out_valid) fail("out_valid is high after reset with no input");

    const std::size_t n = st.n;
    std::vector<uint64_t> sent_cycle(n);
    std::size_t sent = 0, got = 0;
    uint64_t cycle = 0;  // the cycle whose rising edge comes next
    const uint64_t limit = (c.ii + 1) * n + 1000 * (c.latency + 10);
    while (got < n || cycle < (n ? sent_cycle[n - 1] : 0) + c.latency + 3) {
        bool drive = sent < n && (sent == 0 || cycle >= sent_cycle[sent - 1] + c.ii);
        if (drive && c.idle_permille) {
            st.rng ^= st.rng << 13;
            st.rng ^= st.rng >> 7;
            st.rng ^= st.rng << 17;
            drive = (st.rng % 1000) >= c.idle_permille;
        }
        top->in_valid = drive;
        set_port(top->in_data, drive ? &st.in[sent * c.in_words] : junk.data(), c.in_words);
        if (drive) sent_cycle[sent++] = cycle;
        tick();
        // After this edge the outputs belong to cycle + 1: a sample presented in cycle c
        // must appear in cycle c + LATENCY.
        const bool expect = got < sent && sent_cycle[got] + c.latency == cycle + 1;
        if (static_cast<bool>(top->out_valid) != expect) {
            if (expect)
                fail("sample %llu entered in cycle %llu but out_valid is low in cycle %llu",
                     got, sent_cycle[got], cycle + 1);
            fail("out_valid is high in cycle %llu, no sample is due then (%llu out of %llu in)",
                 cycle + 1, got, sent);
        }
        if (expect) {
            get_port(top->out_data, &st.out[got * c.out_words], c.out_words);
            ++got;
        }
        if (++cycle > limit) fail("simulation did not finish within %llu cycles", limit);
    }
    top->final();
    st.cycles = cycle;
}



int main(int argc, char** argv) {
    if (argc != 10 && argc != 11)
        fail("usage: harness IN.bin OUT.bin N LATENCY IN_BITS OUT_BITS IDLE_PERMILLE SEED II [STREAMS]");
    const char* in_path = argv[1];
    const char* out_path = argv[2];
    const std::size_t n = std::strtoull(argv[3], nullptr, 10);
    Config c;
    c.latency = std::strtoull(argv[4], nullptr, 10);
    c.in_bits = std::strtoull(argv[5], nullptr, 10);
    c.out_bits = std::strtoull(argv[6], nullptr, 10);
    c.idle_permille = static_cast<unsigned>(std::strtoul(argv[7], nullptr, 10));
    const uint64_t seed = std::strtoull(argv[8], nullptr, 10);
    c.ii = std::strtoull(argv[9], nullptr, 10);
    std::size_t streams = argc == 11 ? std::strtoull(argv[10], nullptr, 10) : 1;
    if (c.ii < 1) fail("the initiation interval must be at least 1");
    if (c.latency < 1) fail("latency must be at least 1");
    if (streams < 1) fail("STREAMS must be at least 1");
    if (streams > n) streams = n ? n : 1;
    c.in_words = (c.in_bits + 31) / 32;
    c.out_words = (c.out_bits + 31) / 32;

    std::vector<uint32_t> in(n * c.in_words), out(n * c.out_words, 0);
    {
        FILE* f = std::fopen(in_path, "rb");
        if (!f) fail("cannot open the input file");
        const std::size_t got = std::fread(in.data(), 4, in.size(), f);
        std::fclose(f);
        if (got != in.size()) fail("input file holds %llu words, expected %llu", got, in.size());
    }
    std::vector<Stream> parts(streams);
    for (std::size_t k = 0, first = 0; k < streams; ++k) {
        const std::size_t len = n / streams + (k < n % streams);
        parts[k].in = in.data() + first * c.in_words;
        parts[k].out = out.data() + first * c.out_words;
        parts[k].n = len;
        parts[k].rng = (seed + 7919 * k) * 0x9E3779B97F4A7C15ull + 1;
        first += len;
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (streams == 1) {
        run_stream(c, parts[0]);
    } else {
        std::vector<std::thread> threads;
        for (auto& p : parts) threads.emplace_back(run_stream, std::cref(c), std::ref(p));
        for (auto& t : threads) t.join();
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t cycles = 0;
    for (const auto& p : parts) cycles = p.cycles > cycles ? p.cycles : cycles;

    FILE* f = std::fopen(out_path, "wb");
    if (!f) fail("cannot open the output file");
    if (std::fwrite(out.data(), 4, out.size(), f) != out.size()) fail("cannot write the outputs");
    std::fclose(f);
    std::printf("cycles=%llu seconds=%.6f\n", static_cast<unsigned long long>(cycles), secs);
    return 0;
}
