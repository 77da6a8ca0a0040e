"""The bunch-crossing wrapper ``<top>_bx``: one sample per 25 ns crossing, received as a
frame of N words, for trigger boards.

At a clock of ``f`` MHz a bunch crossing lasts ``N = f / 40`` cycles (6 at 240 MHz, 8 at
320 MHz; LHC clocks such as 240.474 MHz = 6 x 40.079 MHz are accepted, to 0.5%).  The
core's ``in_data`` (``in_bus_width`` bits) is cut into N words of ``W = ceil(in_bus_width /
N)`` bits, zero-padded at the top to ``N * W`` bits: word ``j`` carries bits
``[j*W + W-1 : j*W]`` (word 0 the least significant).

Ports: ``clk``, ``rst`` (synchronous, active high; clears a frame being received, the
samples in flight and the output), ``bx_start`` (high in the cycle of word 0 of a frame),
``in_word`` (W bits; the frame's words in N consecutive cycles from ``bx_start`` on, junk
outside frames), ``out_valid`` (a one-cycle pulse per decision) and ``out_data`` (the core's
``out_data``, held from the pulse to the next decision; zero after reset).

A frame is complete when its N-th word has arrived; ``bx_start`` during a frame restarts
it (the partial frame is dropped), cycles without ``bx_start`` between frames are empty
crossings.  The assembled frame enters the core (``in_valid``) the cycle after its last
word, so the core gets a sample at most every N cycles: the wrapper requires ``II <= N``
and refuses a slower core (`WrapperError`).

**Latency.**  With ``bx_start`` in cycle ``c``: the frame enters the core in cycle
``c + N``, the core answers at ``c + N + L``, and ``out_valid`` rises in cycle

    c + latency_cycles,   latency_cycles = N + L + 1 + D,

(``+ 1``: the output register), where ``D = (-(N + L + 1)) mod N`` aligns the decision to a
crossing boundary (``align=True``, the default): it then leaves at the first cycle of a
crossing, ``latency_bx = latency_cycles / N = ceil((N + L + 1) / N)`` crossings after the
one whose data it judges.  Without alignment ``D = 0`` and ``latency_bx`` is the fraction
``(N + L + 1) / N``.  Both, and ``latency_ns``, are in ``wrappers.json``.
"""

from __future__ import annotations

from nnfpga.backends.rtl.wrappers.common import WrapperError, bits_for, comment, core_facts, header

#: The LHC bunch-crossing rate the word count is taken from (nominal; 40.079 MHz is within tolerance).
BX_RATE_MHZ = 40.0
_TOLERANCE = 0.005


def words_per_crossing(clock_mhz: float) -> int:
    """N = clock / 40 MHz, an integer (to 0.5%), or `WrapperError`."""
    f = float(clock_mhz)
    n = round(f / BX_RATE_MHZ)
    if not f > 0 or n < 1 or abs(f / (n * BX_RATE_MHZ) - 1) > _TOLERANCE:
        raise WrapperError(f"bunch-crossing wrapper: a {clock_mhz} MHz clock is not a whole multiple of the "
                           f"{BX_RATE_MHZ:g} MHz crossing rate (e.g. 240 MHz = 6 words per crossing, 320 MHz = 8)")
    return n


def bx_plan(info: dict, clock_mhz: float, align: bool = True) -> dict:
    """The bunch-crossing wrapper of the core described by ``info`` (its ``rtl.json``) at ``clock_mhz``."""
    plan = core_facts(info)
    n = words_per_crossing(clock_mhz)
    latency, ii = plan["core_latency_cycles"], plan["core_ii_cycles"]
    if ii > n:
        raise WrapperError(
            f"bunch-crossing wrapper: core {plan['core']} accepts a sample every {ii} cycles (II), but a "
            f"crossing at {clock_mhz:g} MHz lasts {n} cycles: the core cannot take one sample per crossing. "
            f"Compile it with II <= {n} (a lower reuse factor, e.g. --reuse {n}) or use a faster clock.")
    width = -(-plan["in_bus_width"] // n)
    base = n + latency + 1
    delay = -base % n if align else 0
    cycles = base + delay
    top = f"{plan['core']}_bx"
    return plan | {
        "kind": "bunch-crossing wrapper",
        "top": top,
        "files": {"verilog": f"verilog/{top}.v", "vhdl": f"vhdl/{top}.vhd"},
        "clock_mhz": float(clock_mhz),
        "words_per_bx": n,
        "word_width": width,
        "frame_width": n * width,
        "aligned": bool(align),
        "align_delay_cycles": delay,
        "latency_cycles": cycles,
        "latency_bx": cycles // n if cycles % n == 0 else cycles / n,
        "latency_ns": cycles * 1000.0 / float(clock_mhz),
        "output_phase": cycles % n,
        "latency_formula": "latency_cycles = N + L + 1 + D, D = (-(N + L + 1)) mod N when aligned (else 0); "
                           "latency_bx = latency_cycles / N",
    }


def _summary(plan: dict) -> list[str]:
    n, w, lat = plan["words_per_bx"], plan["word_width"], plan["latency_cycles"]
    return [
        f"Clock {plan['clock_mhz']:g} MHz: {n} words of {w} bits per 25 ns bunch crossing; word j = in_data bits "
        f"[j*{w} + {w - 1} : j*{w}] (in_data zero-padded to {plan['frame_width']} bits), word 0 with bx_start.",
        "bx_start during a frame restarts it (the partial frame is dropped).",
        f"out_valid: a one-cycle pulse {lat} cycles after bx_start ({plan['latency_bx']} bunch crossings, "
        f"{plan['latency_ns']:.3f} ns): {n} (frame) + {plan['core_latency_cycles']} (core) + 1 (output register)"
        + (f" + {plan['align_delay_cycles']} (alignment to a crossing boundary)" if plan["align_delay_cycles"] else "")
        + ".",
        "out_data: the decision, held until the next one; zero after reset.",
        "rst: synchronous, active high; clears the frame being received, the samples in flight and the output.",
    ]


def _counter_verilog(n: int, cw: int) -> str:
    if n == 1:
        return """  always @(posedge clk) begin
    if (rst) core_in_valid <= 1'b0;
    else core_in_valid <= bx_start;
  end
"""
    return f"""  always @(posedge clk) begin
    if (rst) begin
      word_cnt <= {cw}'d0;
      core_in_valid <= 1'b0;
    end else if (bx_start) begin
      word_cnt <= {cw}'d1;
      core_in_valid <= 1'b0;
    end else if (word_cnt == {cw}'d{n - 1}) begin
      word_cnt <= {cw}'d0;
      core_in_valid <= 1'b1;
    end else begin
      if (word_cnt != {cw}'d0) word_cnt <= word_cnt + {cw}'d1;
      core_in_valid <= 1'b0;
    end
  end
"""


def bx_verilog(plan: dict) -> str:
    top, core = plan["top"], plan["core"]
    n, w, f = plan["words_per_bx"], plan["word_width"], plan["frame_width"]
    iw, ow, d = plan["in_bus_width"], plan["out_bus_width"], plan["align_delay_cycles"]
    cw = bits_for(n - 1)
    out = comment(header(plan, "Verilog-2005", _summary(plan)), "//")
    shift = "frame <= in_word;" if n == 1 else f"frame <= {{in_word, frame[{f - 1}:{w}]}};"
    if d == 0:
        stage = f"""  always @(posedge clk) begin
    if (rst) begin
      out_valid_r <= 1'b0;
      out_data_r <= {ow}'d0;
    end else begin
      out_valid_r <= core_out_valid;
      if (core_out_valid) out_data_r <= core_out_data;
    end
  end
"""
        decl = ""
    else:
        decl = (f"  // alignment of the decision to a crossing boundary: {d} cycle{'s' if d > 1 else ''}\n"
                f"  reg [{d - 1}:0] align_sr;\n"
                f"  reg [{ow - 1}:0] hold_data;\n")
        sr = "align_sr <= core_out_valid;" if d == 1 else f"align_sr <= {{align_sr[{d - 2}:0], core_out_valid}};"
        stage = f"""  always @(posedge clk) begin
    if (rst) begin
      align_sr <= {d}'d0;
      out_valid_r <= 1'b0;
      out_data_r <= {ow}'d0;
    end else begin
      {sr}
      out_valid_r <= align_sr[{d - 1}];
      if (align_sr[{d - 1}]) out_data_r <= hold_data;
    end
  end

  always @(posedge clk) begin
    if (core_out_valid) hold_data <= core_out_data;
  end
"""
    cnt_decl = "" if n == 1 else (f"  // words of the current frame received so far (0: no frame)\n"
                                  f"  reg [{cw - 1}:0] word_cnt;\n")
    out += f"""
`default_nettype none
/* verilator lint_off UNUSEDSIGNAL */

module {top} (
    input  wire clk,
    input  wire rst,       // synchronous, active high
    input  wire bx_start,  // high with word 0 of a frame
    input  wire [{w - 1}:0] in_word,
    output wire out_valid,
    output wire [{ow - 1}:0] out_data
);

  // the frame: words enter at the top, word 0 is at the bottom after {n} shifts
  reg [{f - 1}:0] frame;
{cnt_decl}  reg core_in_valid;
  wire core_out_valid;
  wire [{ow - 1}:0] core_out_data;
{decl}  reg out_valid_r;
  reg [{ow - 1}:0] out_data_r;

  assign out_valid = out_valid_r;
  assign out_data = out_data_r;

  always @(posedge clk) begin
    {shift}
  end

{_counter_verilog(n, cw)}
{stage}
  {core} u_core (
    .clk(clk),
    .rst(rst),
    .in_valid(core_in_valid),
    .in_data(frame[{iw - 1}:0]),
    .out_valid(core_out_valid),
    .out_data(core_out_data)
  );

endmodule

/* verilator lint_on UNUSEDSIGNAL */
`default_nettype wire
"""
    return out


def _counter_vhdl(n: int, cw: int) -> str:
    if n == 1:
        return """  process (clk)
  begin
    if rising_edge(clk) then
      if rst = '1' then
        core_in_valid <= '0';
      else
        core_in_valid <= bx_start;
      end if;
    end if;
  end process;
"""
    return f"""  process (clk)
  begin
    if rising_edge(clk) then
      if rst = '1' then
        word_cnt <= (others => '0');
        core_in_valid <= '0';
      elsif bx_start = '1' then
        word_cnt <= to_unsigned(1, {cw});
        core_in_valid <= '0';
      elsif word_cnt = {n - 1} then
        word_cnt <= (others => '0');
        core_in_valid <= '1';
      else
        if word_cnt /= 0 then
          word_cnt <= word_cnt + 1;
        end if;
        core_in_valid <= '0';
      end if;
    end if;
  end process;
"""


def bx_vhdl(plan: dict) -> str:
    top, core = plan["top"], plan["core"]
    n, w, f = plan["words_per_bx"], plan["word_width"], plan["frame_width"]
    iw, ow, d = plan["in_bus_width"], plan["out_bus_width"], plan["align_delay_cycles"]
    cw = bits_for(n - 1)
    out = comment(header(plan, "VHDL-2008", _summary(plan)), "--")
    shift = "frame <= in_word;" if n == 1 else f"frame <= in_word & frame({f - 1} downto {w});"
    if d == 0:
        decl = ""
        stage = """  process (clk)
  begin
    if rising_edge(clk) then
      if rst = '1' then
        out_valid_r <= '0';
        out_data_r <= (others => '0');
      else
        out_valid_r <= core_out_valid;
        if core_out_valid = '1' then
          out_data_r <= core_out_data;
        end if;
      end if;
    end if;
  end process;
"""
    else:
        decl = (f"  -- alignment of the decision to a crossing boundary: {d} cycle{'s' if d > 1 else ''}\n"
                f"  signal align_sr : std_logic_vector({d - 1} downto 0) := (others => '0');\n"
                f"  signal hold_data : std_logic_vector({ow - 1} downto 0);\n")
        sr = "align_sr(0) <= core_out_valid;" if d == 1 else \
            f"align_sr <= align_sr({d - 2} downto 0) & core_out_valid;"
        stage = f"""  process (clk)
  begin
    if rising_edge(clk) then
      if rst = '1' then
        align_sr <= (others => '0');
        out_valid_r <= '0';
        out_data_r <= (others => '0');
      else
        {sr}
        out_valid_r <= align_sr({d - 1});
        if align_sr({d - 1}) = '1' then
          out_data_r <= hold_data;
        end if;
      end if;
      if core_out_valid = '1' then
        hold_data <= core_out_data;
      end if;
    end if;
  end process;
"""
    cnt_decl = "" if n == 1 else (f"  -- words of the current frame received so far (0: no frame)\n"
                                  f"  signal word_cnt : unsigned({cw - 1} downto 0) := (others => '0');\n")
    out += f"""
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity {top} is
  port (
    clk       : in  std_logic;
    rst       : in  std_logic;  -- synchronous, active high
    bx_start  : in  std_logic;  -- high with word 0 of a frame
    in_word   : in  std_logic_vector({w - 1} downto 0);
    out_valid : out std_logic;
    out_data  : out std_logic_vector({ow - 1} downto 0)
  );
end entity {top};

architecture rtl of {top} is

  -- the frame: words enter at the top, word 0 is at the bottom after {n} shifts
  signal frame : std_logic_vector({f - 1} downto 0) := (others => '0');
{cnt_decl}  signal core_in_valid : std_logic := '0';
  signal core_out_valid : std_logic;
  signal core_out_data : std_logic_vector({ow - 1} downto 0);
{decl}  signal out_valid_r : std_logic := '0';
  signal out_data_r : std_logic_vector({ow - 1} downto 0) := (others => '0');

begin

  out_valid <= out_valid_r;
  out_data <= out_data_r;

  process (clk)
  begin
    if rising_edge(clk) then
      {shift}
    end if;
  end process;

{_counter_vhdl(n, cw)}
{stage}
  u_core : entity work.{core}
    port map (
      clk       => clk,
      rst       => rst,
      in_valid  => core_in_valid,
      in_data   => frame({iw - 1} downto 0),
      out_valid => core_out_valid,
      out_data  => core_out_data
    );

end architecture rtl;
"""
    return out
