// tb_{name}: self-checking Verilog test bench of the module {name}, {generated}.
// Do not edit: regenerate from the model instead.
//
// Reads IN_FILE (one hex in_data word per line) and EXP_FILE (one hex out_data word per
// line: the golden model's outputs for those inputs), presents a sample every II clock
// cycles (one more idle cycle after every 7th sample; in_data carries junk while
// in_valid is low) and checks, at every clock edge after the reset, that out_valid is
// in_valid delayed by exactly LATENCY cycles and that every output equals the next
// expected word, bit for bit.  It ends with "tb_{name}: PASS" or with $fatal.
//
//   iverilog -g2012 -o tb_{name}.vvp tb_{name}.v ../verilog/{name}.v && vvp tb_{name}.vvp
//   (in this directory; or fusesoc run --target sim_verilog {vlnv})
`timescale 1ns / 1ps
`default_nettype none

module tb_{name};
  parameter IN_FILE = "inputs.txt";
  parameter EXP_FILE = "expected.txt";
  localparam IN_W = {in_width};  // in_data bits
  localparam OUT_W = {out_width};  // out_data bits
  localparam LATENCY = {latency};  // cycles from in_valid to out_valid
  localparam II = {ii};  // cycles between accepted inputs
  localparam MAX_REPORTS = 10;

  reg clk = 1'b0;
  reg rst = 1'b1;
  reg in_valid = 1'b0;
  reg [IN_W - 1:0] in_data = 0;
  wire out_valid;
  wire [OUT_W - 1:0] out_data;

  {name} dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_data),
    .out_valid(out_valid), .out_data(out_data));

  always #5 clk = ~clk;

  // hist[k]: in_valid as the core captured it k + 1 edges ago
  reg [LATENCY:0] hist = 0;
  reg [IN_W - 1:0] word_in;
  reg [OUT_W - 1:0] word_exp;
  integer fin, fexp, r, k, more;
  integer n_in = 0, n_out = 0, errors = 0, cycle = 0;

  task fail;
    input [8 * 120 - 1:0] msg;
    begin
      errors = errors + 1;
      if (errors <= MAX_REPORTS)
        $display("tb_{name}: cycle %0d: %0s", cycle, msg);
    end
  endtask

  // one clock edge: check what the core shows just before it (its registers update
  // after this block has read them), then note what it captures at this edge.  The
  // inputs are driven with non-blocking assignments, after the core has sampled them.
  task tick;
    begin
      @(posedge clk);
      cycle = cycle + 1;
      if (out_valid !== hist[LATENCY - 1]) begin
        fail("out_valid differs from in_valid delayed by LATENCY cycles");
        if (errors <= MAX_REPORTS)
          $display("  out_valid is %b, expected %b", out_valid, hist[LATENCY - 1]);
      end
      if (out_valid === 1'b1) begin
        r = $fscanf(fexp, "%h\n", word_exp);
        if (r != 1) begin
          fail("an output has no expected value (more outputs than samples)");
        end else if (out_data !== word_exp) begin
          fail("an output differs from the expected value");
          if (errors <= MAX_REPORTS)
            $display("  output %0d is %h, expected %h", n_out, out_data, word_exp);
        end
        n_out = n_out + 1;
      end
      hist = (hist << 1) | in_valid;
    end
  endtask

  initial begin
    fin = $fopen(IN_FILE, "r");
    fexp = $fopen(EXP_FILE, "r");
    if (fin == 0 || fexp == 0)
      $fatal(1, "tb_{name}: cannot open %0s or %0s", IN_FILE, EXP_FILE);
    rst <= 1'b1;
    for (k = 0; k < 4; k = k + 1)
      @(posedge clk);
    rst <= 1'b0;
    more = 1;
    while (more) begin
      r = $fscanf(fin, "%h\n", word_in);
      if (r != 1) begin
        more = 0;
      end else begin
        in_data <= word_in;
        in_valid <= 1'b1;
        tick;
        n_in = n_in + 1;
        in_valid <= 1'b0;
        in_data <= ~word_in;
        for (k = 1; k < II; k = k + 1)
          tick;
        if (n_in % 7 == 0)
          tick;
      end
    end
    for (k = 0; k < LATENCY + 2; k = k + 1)
      tick;
    if ($fscanf(fexp, "%h\n", word_exp) == 1)
      fail("expected outputs left over (fewer outputs than samples)");
    if (n_out != n_in)
      fail("the numbers of outputs and samples differ");
    if (errors != 0)
      $fatal(1, "tb_{name}: FAIL: %0d errors in %0d samples (%0d outputs)", errors, n_in, n_out);
    $display("tb_{name}: PASS: %0d samples bit-exact, out_valid exactly %0d cycles after in_valid", n_in, LATENCY);
    $finish;
  end
endmodule

`default_nettype wire
