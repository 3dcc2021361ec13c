package store_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/netwarden/netwarden/store"
)

func ExampleDir() {
	tmp, err := os.MkdirTemp("", "netwarden-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	filters, err := store.OpenDir(filepath.Join(tmp, "nwfilter"), ".xml")
	if err != nil {
		log.Fatal(err)
	}
	if err := filters.Put("allow-arp", []byte("<filter name='allow-arp' chain='arp'/>")); err != nil {
		log.Fatal(err)
	}
	n, problems := filters.Load(func(name string, data []byte) error {
		fmt.Printf("%s: %s\n", name, data)
		return nil
	})
	fmt.Println(n, "loaded,", len(problems), "problems")

	err = filters.Delete("no-such-filter")
	fmt.Println(store.IsNotFound(err))
	// Output:
	// allow-arp: <filter name='allow-arp' chain='arp'/>
	// 1 loaded, 0 problems
	// true
}
