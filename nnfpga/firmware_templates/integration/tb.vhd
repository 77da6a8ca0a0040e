-- tb_{name}: self-checking VHDL-2008 test bench of {library}.{name}, {generated}.
-- Do not edit: regenerate from the model instead.
--
-- Reads IN_FILE (one hex in_data word per line) and EXP_FILE (one hex out_data word per
-- line: the golden model's outputs for those inputs), presents a sample every II clock
-- cycles (one more idle cycle after every 7th sample; in_data carries junk while
-- in_valid is low) and checks, at every clock edge after the reset, that out_valid is
-- in_valid delayed by exactly LATENCY cycles and that every output equals the next
-- expected word, bit for bit.  It ends with "tb_{name}: PASS" or with a failure
-- (GHDL exit status 1).
--
--   ghdl -a --std=08 --work={library} ../vhdl/{name}.vhd
--   ghdl -a --std=08 tb_{name}.vhd && ghdl -e --std=08 tb_{name} && ghdl -r --std=08 tb_{name}
--   (in this directory; or fusesoc run --target sim {vlnv})

library ieee;
use ieee.std_logic_1164.all;
use std.textio.all;

library {library};

entity tb_{name} is
  generic (
    IN_FILE  : string := "inputs.txt";
    EXP_FILE : string := "expected.txt"
  );
end entity tb_{name};

architecture sim of tb_{name} is
  constant IN_W    : positive := {in_width};  -- in_data bits
  constant OUT_W   : positive := {out_width};  -- out_data bits
  constant IN_HEX  : positive := {in_hex_bits};  -- in_data bits rounded up to whole hex digits
  constant OUT_HEX : positive := {out_hex_bits};  -- out_data bits rounded up to whole hex digits
  constant LATENCY : positive := {latency};  -- cycles from in_valid to out_valid
  constant II      : positive := {ii};  -- cycles between accepted inputs
  constant MAX_REPORTS : natural := 10;

  signal clk       : std_logic := '0';
  signal rst       : std_logic := '1';
  signal in_valid  : std_logic := '0';
  signal in_data   : std_logic_vector(IN_W - 1 downto 0) := (others => '0');
  signal out_valid : std_logic;
  signal out_data  : std_logic_vector(OUT_W - 1 downto 0);
  signal done      : boolean := false;
begin
  dut : entity {library}.{name}
    port map (clk => clk, rst => rst, in_valid => in_valid, in_data => in_data,
              out_valid => out_valid, out_data => out_data);

  clk <= not clk after 5 ns when not done;

  main : process
    file fin      : text open read_mode is IN_FILE;
    file fexp     : text open read_mode is EXP_FILE;
    variable l    : line;
    variable word_in  : std_logic_vector(IN_HEX - 1 downto 0);
    variable word_exp : std_logic_vector(OUT_HEX - 1 downto 0);
    variable word_out : std_logic_vector(OUT_HEX - 1 downto 0);
    -- hist(k): in_valid as the core captured it k + 1 edges ago
    variable hist   : std_logic_vector(LATENCY downto 0) := (others => '0');
    variable n_in   : natural := 0;
    variable n_out  : natural := 0;
    variable errors : natural := 0;
    variable cycle  : natural := 0;

    procedure fail(msg : string) is
    begin
      errors := errors + 1;
      if errors <= MAX_REPORTS then
        report "tb_{name}: cycle " & integer'image(cycle) & ": " & msg severity error;
      end if;
    end procedure fail;

    -- one clock edge: check what the core shows just before it (its registers update
    -- after this process has read them), then note what it captures at this edge
    procedure tick is
    begin
      wait until rising_edge(clk);
      cycle := cycle + 1;
      if out_valid /= hist(LATENCY - 1) then
        fail("out_valid is " & std_logic'image(out_valid) & ", expected " & std_logic'image(hist(LATENCY - 1)));
      end if;
      if out_valid = '1' then
        if endfile(fexp) then
          fail("output " & integer'image(n_out) & " has no expected value (more outputs than samples)");
        else
          readline(fexp, l);
          hread(l, word_exp);
          word_out := (others => '0');
          word_out(OUT_W - 1 downto 0) := out_data;
          if word_out /= word_exp then
            fail("output " & integer'image(n_out) & " is " & to_hstring(word_out) & ", expected " &
                  to_hstring(word_exp));
          end if;
        end if;
        n_out := n_out + 1;
      end if;
      hist := hist(LATENCY - 1 downto 0) & in_valid;
    end procedure tick;
  begin
    rst <= '1';
    for k in 1 to 4 loop
      wait until rising_edge(clk);
    end loop;
    rst <= '0';
    while not endfile(fin) loop
      readline(fin, l);
      hread(l, word_in);
      in_data <= word_in(IN_W - 1 downto 0);
      in_valid <= '1';
      tick;
      n_in := n_in + 1;
      in_valid <= '0';
      in_data <= not word_in(IN_W - 1 downto 0);
      for k in 2 to II loop
        tick;
      end loop;
      if n_in mod 7 = 0 then
        tick;
      end if;
    end loop;
    for k in 1 to LATENCY + 2 loop
      tick;
    end loop;
    if not endfile(fexp) then
      fail("expected outputs left over: " & integer'image(n_out) & " outputs for more expected values");
    end if;
    if n_out /= n_in then
      fail(integer'image(n_out) & " outputs for " & integer'image(n_in) & " samples");
    end if;
    assert errors = 0
      report "tb_{name}: FAIL: " & integer'image(errors) & " errors in " & integer'image(n_in) & " samples"
      severity failure;
    report "tb_{name}: PASS: " & integer'image(n_in) & " samples bit-exact, out_valid exactly " &
           integer'image(LATENCY) & " cycles after in_valid" severity note;
    done <= true;
    wait;
  end process main;
end architecture sim;
