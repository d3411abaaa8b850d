// Command calico-p4-scenario compiles an e2e scenario (YAML) into the Felix stream Felix would send
// (JSONL of felix.ToDataplane, step markers as {"step":"<title>"} lines), for the Felix emulator or a file:
//
//	calico-p4-scenario compile e2e/scenario/testdata/calico-tiers.yaml > tiers.jsonl
//	calico-p4-scenario pods e2e/scenario/testdata/calico-tiers.yaml --step 1
//
// The logic lives in e2e/scenario; this is wiring only.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/calico-p4/calico-p4/e2e/scenario"
)

func main() {
	root := &cobra.Command{Use: "calico-p4-scenario", Short: "Compile calico-p4 e2e scenarios into Felix streams", SilenceUsage: true}
	root.AddCommand(&cobra.Command{
		Use:   "compile FILE",
		Short: "Print the scenario's Felix stream as JSONL",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := scenario.Load(args[0])
			if err != nil {
				return err
			}
			st, err := scenario.Compile(s)
			if err != nil {
				return err
			}
			return st.WriteJSONL(os.Stdout)
		},
	})
	var step int
	pods := &cobra.Command{
		Use:   "pods FILE",
		Short: "List the scenario's pods (name, node, addresses, host interface) after a step",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := scenario.Load(args[0])
			if err != nil {
				return err
			}
			ps, err := s.Pods(step)
			if err != nil {
				return err
			}
			for _, p := range ps {
				fmt.Printf("%-20s %-8s %-15s %-22s %s\n", p.Name, p.Node, p.IPv4, p.IPv6, p.HostIface)
			}
			return nil
		},
	}
	pods.Flags().IntVar(&step, "step", 0, "0 = after InSync, N = after step N")
	root.AddCommand(pods)
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
