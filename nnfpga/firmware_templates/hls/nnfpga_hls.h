// nnfpga_hls.h -- small helpers shared by every firmware tree nnfpga generates.
//
// Copied verbatim into <outdir>/hls/.  Everything here is bit manipulation on the
// Xilinx ap_fixed types: no arithmetic changes a value's meaning, so the generated
// code stays exactly the computation the nnfpga IR (and its golden emulator) defines.
#ifndef NNFPGA_HLS_H_
#define NNFPGA_HLS_H_

#include <ap_fixed.h>
#include <ap_int.h>

namespace nnfpga {

/// ap_fixed<W, I> when S, ap_ufixed<W, I> otherwise (TRN, WRAP).
template <int W, int I, bool S> struct fixed_of;
template <int W, int I> struct fixed_of<W, I, true> { typedef ap_fixed<W, I> type; };
template <int W, int I> struct fixed_of<W, I, false> { typedef ap_ufixed<W, I> type; };

/// x * 2^E with the very same bits: only the binary point moves, so this is wiring,
/// not logic.  Used for power-of-two, ternary and binary weights (no multiplier).
template <int E, int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
inline typename fixed_of<W, I + E, S>::type scale_pow2(const ap_fixed_base<W, I, S, Q, O, N> &x) {
#pragma HLS INLINE
    typename fixed_of<W, I + E, S>::type y;
    y.range(W - 1, 0) = x.range(W - 1, 0);
    return y;
}

/// Address of a lookup table indexed by a value of the table's index type:
/// raw - min_raw, i.e. the raw bits with the sign bit inverted for signed types.
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
inline ap_uint<W> table_address(const ap_fixed_base<W, I, S, Q, O, N> &idx) {
#pragma HLS INLINE
    ap_uint<W> a = idx.range(W - 1, 0);
    if (S) a[W - 1] = !a[W - 1];
    return a;
}

/// y = x with y's rounding and overflow: the IR's conversion.  A plain assignment, except
/// where all of x lies more than its own width below y's LSB and y rounds: ap_fixed's
/// conversion then reads a bit beyond x's MSB (an assertion that aborts C simulation);
/// there |x| < LSB/4, so rounding to nearest gives 0, as in the IR.
template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2,
          int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
inline void convert(ap_fixed_base<W2, I2, S2, Q2, O2, N2> &y, const ap_fixed_base<W, I, S, Q, O, N> &x) {
#pragma HLS INLINE
    if (Q2 != AP_TRN && (W - I) - (W2 - I2) > W) y = 0;
    else y = x;
}

#ifndef __SYNTHESIS__
// ---------------------------------------------------------------- test-bench helpers
// Raw integers (value * 2^frac) in and out of a fixed-point variable; W <= 62.

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
inline long long raw_min(const ap_fixed_base<W, I, S, Q, O, N> &) {
    return S ? -(1LL << (W - 1)) : 0LL;
}

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
inline long long raw_max(const ap_fixed_base<W, I, S, Q, O, N> &) {
    return S ? (1LL << (W - 1)) - 1 : (1LL << W) - 1;
}

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
inline void set_raw(ap_fixed_base<W, I, S, Q, O, N> &v, long long raw) {
    ap_uint<W> bits = (unsigned long long)raw;  // keeps the low W bits
    v.range(W - 1, 0) = bits;
}

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
inline long long get_raw(const ap_fixed_base<W, I, S, Q, O, N> &v) {
    ap_uint<W> bits = v.range(W - 1, 0);
    unsigned long long u = bits.to_uint64();
    if (S && ((u >> (W - 1)) & 1ULL)) return (long long)(u - (1ULL << W));
    return (long long)u;
}
#endif  // __SYNTHESIS__

}  // namespace nnfpga

#endif  // NNFPGA_HLS_H_
