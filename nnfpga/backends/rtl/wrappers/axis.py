"""The AXI4-Stream wrapper ``<top>_axis``: back-pressure around the fixed-latency core.

Ports: ``aclk``; ``aresetn`` (synchronous, active low: clears the samples in flight and
the FIFO); slave ``s_axis_tdata`` / ``s_axis_tvalid`` / ``s_axis_tready`` (one sample, the
core's ``in_data`` in the low ``in_bus_width`` bits, upper padding bits ignored); master
``m_axis_tdata`` / ``m_axis_tvalid`` / ``m_axis_tready`` (the core's ``out_data`` in the
low bits, padding zero).  Both tdata widths are rounded up to whole bytes (AXI4-Stream).
``s_axis_tready`` and ``m_axis_tvalid`` are decoded from registers (and are low while
``aresetn`` is low); they never depend on the other side's tvalid/tready in the same cycle.

Data path: a sample is accepted in a cycle with ``s_axis_tvalid and s_axis_tready``; it is
registered and given to the core the next cycle (``in_valid``); the core's result enters
an output FIFO of ``DEPTH`` entries L cycles later and is offered on ``m_axis`` the cycle
after that.  With an empty FIFO the result is on ``m_axis_tvalid`` exactly ``L + 2`` cycles
after the input handshake (``latency_cycles`` in ``wrappers.json``).

No sample is ever lost, whatever ``m_axis_tready`` does: a credit counter counts the
samples accepted and not yet handed out (in the input register, in flight in the core, or
stored in the FIFO); ``s_axis_tready`` is high only while it is below ``DEPTH``, so the
FIFO always has room for every result the core will produce (the core itself cannot be
stopped).  ``s_axis_tready`` also stays low for ``II - 1`` cycles after each accepted
sample: the core gets at most one sample every ``II`` cycles.  Outputs leave in input order.

**Sizing rule.**  A sample holds its credit from its input handshake (cycle c) to its
output handshake, at the earliest cycle ``c + L + 2``: ``L + 2`` cycles.  At full rate
(a sample every II cycles, the sink always ready) the samples accepted in the last
``L + 2`` cycles are outstanding, at most ``ceil((L + 2) / II)``, and the next one is
accepted only while the count is below ``DEPTH``.  So

    DEPTH = the smallest power of two >= ceil((L + 2) / II) + 1

keeps ``s_axis_tready`` high at the full rate 1/II while the sink takes every result (the
``+ 1`` is the margin for the sample accepted in the cycle the oldest one leaves).  A
smaller ``fifo_depth`` (a power of two >= 2) is still lossless; it only caps the
throughput at ``DEPTH / (L + 2)`` samples per cycle.  The FIFO is ``DEPTH x out_bus_width``
bits with an asynchronous read (distributed RAM); the credit counter has
``log2(DEPTH) + 1`` bits.
"""

from __future__ import annotations

from nnfpga.backends.rtl.wrappers.common import WrapperError, bits_for, comment, core_facts, header


def fifo_depth_rule(latency: int, ii: int) -> int:
    """The FIFO depth of the sizing rule: the smallest power of two >= ceil((L + 2) / II) + 1."""
    need = -(-(latency + 2) // ii) + 1
    return 1 << (need - 1).bit_length()


def axis_plan(info: dict, fifo_depth: int | None = None) -> dict:
    """The AXI4-Stream wrapper of the core described by ``info`` (its ``rtl.json``)."""
    plan = core_facts(info)
    latency, ii = plan["core_latency_cycles"], plan["core_ii_cycles"]
    rule = fifo_depth_rule(latency, ii)
    if fifo_depth is None:
        depth = rule
    else:
        depth = int(fifo_depth)
        if depth != fifo_depth or depth < 2 or depth & (depth - 1):
            raise WrapperError(f"fifo_depth must be a power of two >= 2, got {fifo_depth!r} "
                               f"(the sizing rule gives {rule} for latency {latency}, II {ii})")
    top = f"{plan['core']}_axis"
    return plan | {
        "kind": "AXI4-Stream wrapper",
        "top": top,
        "files": {"verilog": f"verilog/{top}.v", "vhdl": f"vhdl/{top}.vhd"},
        "fifo_depth": depth,
        "fifo_depth_rule": rule,
        "sizing_rule": "fifo_depth = smallest power of two >= ceil((latency_cycles + 2) / ii_cycles) + 1",
        "full_rate": depth >= rule,
        "s_axis_tdata_width": 8 * -(-plan["in_bus_width"] // 8),
        "m_axis_tdata_width": 8 * -(-plan["out_bus_width"] // 8),
        "latency_cycles": latency + 2,
        "ii_cycles": ii,
        "clock": "aclk",
        "reset": "aresetn (synchronous, active low)",
    }


def _summary(plan: dict) -> list[str]:
    d, ii = plan["fifo_depth"], plan["ii_cycles"]
    return [
        "AXI4-Stream slave s_axis (one sample per transfer) -> core -> output FIFO -> master m_axis.",
        f"s_axis_tdata: {plan['s_axis_tdata_width']} bits, the core's in_data in bits "
        f"[{plan['in_bus_width'] - 1}:0]; m_axis_tdata: {plan['m_axis_tdata_width']} bits, out_data in "
        f"[{plan['out_bus_width'] - 1}:0], padding zero.",
        f"Output FIFO {d} entries ("
        + ("the sizing rule" if d == plan["fifo_depth_rule"]
           else f"requested; the rule gives {plan['fifo_depth_rule']}")
        + ": smallest power of two >= ceil((L + 2) / II) + 1).",
        f"A credit counter (samples accepted and not yet handed out) keeps s_axis_tready low at {d}: no "
        "result is ever lost, whatever m_axis_tready does.",
        f"At most one sample every {ii} cycle{'s' if ii > 1 else ''} (the core's II); result on m_axis "
        f"{plan['latency_cycles']} cycles after the input handshake when the FIFO is empty.",
        "aresetn: synchronous, active low; clears the core's samples in flight and the FIFO.",
    ]


def axis_verilog(plan: dict) -> str:
    top, core = plan["top"], plan["core"]
    iw, ow = plan["in_bus_width"], plan["out_bus_width"]
    iw8, ow8 = plan["s_axis_tdata_width"], plan["m_axis_tdata_width"]
    d, ii = plan["fifo_depth"], plan["ii_cycles"]
    aw = d.bit_length() - 1
    cw = aw + 1
    out = comment(header(plan, "Verilog-2005", _summary(plan)), "//")
    pad = f"{{{{{ow8 - ow}{{1'b0}}}}, fifo_rdata}}" if ow8 > ow else "fifo_rdata"
    gap = ""
    gap_decl = ""
    gap_reset = ""
    ready = f"aresetn & (credits != {cw}'d{d})"
    if ii > 1:
        gw = bits_for(ii - 1)
        gap_decl = (f"  // cycles until the core may take the next sample (its II is {ii})\n"
                    f"  reg [{gw - 1}:0] ii_wait;\n")
        gap_reset = f"      ii_wait <= {gw}'d0;\n"
        gap = (f"      if (accept) ii_wait <= {gw}'d{ii - 1};\n"
               f"      else if (ii_wait != {gw}'d0) ii_wait <= ii_wait - {gw}'d1;\n")
        ready += f" & (ii_wait == {gw}'d0)"
    out += f"""
`default_nettype none
/* verilator lint_off UNUSEDSIGNAL */

module {top} (
    input  wire aclk,
    input  wire aresetn,  // synchronous, active low
    input  wire [{iw8 - 1}:0] s_axis_tdata,
    input  wire s_axis_tvalid,
    output wire s_axis_tready,
    output wire [{ow8 - 1}:0] m_axis_tdata,
    output wire m_axis_tvalid,
    input  wire m_axis_tready
);

  wire rst = ~aresetn;
  // samples accepted and not yet handed out on m_axis: 0 .. {d}
  reg [{cw - 1}:0] credits;
{gap_decl}  reg core_in_valid;
  reg [{iw - 1}:0] core_in_data;
  wire core_out_valid;
  wire [{ow - 1}:0] core_out_data;
  // output FIFO: {d} x {ow} bits, read asynchronously (distributed RAM)
  reg [{ow - 1}:0] fifo_mem [0:{d - 1}];
  reg [{aw}:0] wr_ptr;
  reg [{aw}:0] rd_ptr;
  wire [{ow - 1}:0] fifo_rdata = fifo_mem[rd_ptr[{aw - 1}:0]];

  assign s_axis_tready = {ready};
  assign m_axis_tvalid = aresetn & (wr_ptr != rd_ptr);
  assign m_axis_tdata = {pad};
  wire accept = s_axis_tvalid & s_axis_tready;
  wire pop = m_axis_tvalid & m_axis_tready;

  always @(posedge aclk) begin
    if (rst) begin
      credits <= {cw}'d0;
{gap_reset}      core_in_valid <= 1'b0;
      wr_ptr <= {aw + 1}'d0;
      rd_ptr <= {aw + 1}'d0;
    end else begin
      if (accept & ~pop) credits <= credits + {cw}'d1;
      else if (pop & ~accept) credits <= credits - {cw}'d1;
{gap}      core_in_valid <= accept;
      if (core_out_valid) wr_ptr <= wr_ptr + {aw + 1}'d1;
      if (pop) rd_ptr <= rd_ptr + {aw + 1}'d1;
    end
  end

  always @(posedge aclk) begin
    if (accept) core_in_data <= s_axis_tdata[{iw - 1}:0];
    if (core_out_valid) fifo_mem[wr_ptr[{aw - 1}:0]] <= core_out_data;
  end

  {core} u_core (
    .clk(aclk),
    .rst(rst),
    .in_valid(core_in_valid),
    .in_data(core_in_data),
    .out_valid(core_out_valid),
    .out_data(core_out_data)
  );

endmodule

/* verilator lint_on UNUSEDSIGNAL */
`default_nettype wire
"""
    return out


def axis_vhdl(plan: dict) -> str:
    top, core = plan["top"], plan["core"]
    iw, ow = plan["in_bus_width"], plan["out_bus_width"]
    iw8, ow8 = plan["s_axis_tdata_width"], plan["m_axis_tdata_width"]
    d, ii = plan["fifo_depth"], plan["ii_cycles"]
    aw = d.bit_length() - 1
    cw = aw + 1
    out = comment(header(plan, "VHDL-2008", _summary(plan)), "--")
    gap_decl = gap_reset = gap = ""
    ready = f"aresetn = '1' and credits /= {d}"
    if ii > 1:
        gw = bits_for(ii - 1)
        gap_decl = (f"  -- cycles until the core may take the next sample (its II is {ii})\n"
                    f"  signal ii_wait : unsigned({gw - 1} downto 0) := (others => '0');\n")
        gap_reset = "        ii_wait <= (others => '0');\n"
        gap = (f"        if accept = '1' then\n"
               f"          ii_wait <= to_unsigned({ii - 1}, {gw});\n"
               f"        elsif ii_wait /= 0 then\n"
               f"          ii_wait <= ii_wait - 1;\n"
               f"        end if;\n")
        ready += " and ii_wait = 0"
    pad = (f"  m_axis_tdata({ow8 - 1} downto {ow}) <= (others => '0');\n" if ow8 > ow else "")
    out += f"""
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity {top} is
  port (
    aclk          : in  std_logic;
    aresetn       : in  std_logic;  -- synchronous, active low
    s_axis_tdata  : in  std_logic_vector({iw8 - 1} downto 0);
    s_axis_tvalid : in  std_logic;
    s_axis_tready : out std_logic;
    m_axis_tdata  : out std_logic_vector({ow8 - 1} downto 0);
    m_axis_tvalid : out std_logic;
    m_axis_tready : in  std_logic
  );
end entity {top};

architecture rtl of {top} is

  signal rst : std_logic;
  -- samples accepted and not yet handed out on m_axis: 0 .. {d}
  signal credits : unsigned({cw - 1} downto 0) := (others => '0');
{gap_decl}  signal core_in_valid : std_logic := '0';
  signal core_in_data : std_logic_vector({iw - 1} downto 0) := (others => '0');
  signal core_out_valid : std_logic;
  signal core_out_data : std_logic_vector({ow - 1} downto 0);
  -- output FIFO: {d} x {ow} bits, read asynchronously (distributed RAM)
  type fifo_t is array (0 to {d - 1}) of std_logic_vector({ow - 1} downto 0);
  signal fifo_mem : fifo_t;
  signal wr_ptr : unsigned({aw} downto 0) := (others => '0');
  signal rd_ptr : unsigned({aw} downto 0) := (others => '0');
  signal ready, valid, accept, pop : std_logic;

begin

  rst <= not aresetn;
  ready <= '1' when {ready} else '0';
  valid <= '1' when aresetn = '1' and wr_ptr /= rd_ptr else '0';
  s_axis_tready <= ready;
  m_axis_tvalid <= valid;
  m_axis_tdata({ow - 1} downto 0) <= fifo_mem(to_integer(rd_ptr({aw - 1} downto 0)));
{pad}  accept <= s_axis_tvalid and ready;
  pop <= valid and m_axis_tready;

  process (aclk)
  begin
    if rising_edge(aclk) then
      if rst = '1' then
        credits <= (others => '0');
{gap_reset}        core_in_valid <= '0';
        wr_ptr <= (others => '0');
        rd_ptr <= (others => '0');
      else
        if accept = '1' and pop = '0' then
          credits <= credits + 1;
        elsif pop = '1' and accept = '0' then
          credits <= credits - 1;
        end if;
{gap}        core_in_valid <= accept;
        if core_out_valid = '1' then
          wr_ptr <= wr_ptr + 1;
        end if;
        if pop = '1' then
          rd_ptr <= rd_ptr + 1;
        end if;
      end if;
      if accept = '1' then
        core_in_data <= s_axis_tdata({iw - 1} downto 0);
      end if;
      if core_out_valid = '1' then
        fifo_mem(to_integer(wr_ptr({aw - 1} downto 0))) <= core_out_data;
      end if;
    end if;
  end process;

  u_core : entity work.{core}
    port map (
      clk       => aclk,
      rst       => rst,
      in_valid  => core_in_valid,
      in_data   => core_in_data,
      out_valid => core_out_valid,
      out_data  => core_out_data
    );

end architecture rtl;
"""
    return out
