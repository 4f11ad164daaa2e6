package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/datavision/des/pkg/client"
)

// Read one file by its DES name from the sidecar of the same pod. (Examples without an Output line
// are compiled but not run: they need a running sidecar.)
func ExampleReader_Open() {
	c, err := client.NewReader("http://127.0.0.1:8090", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, err := c.Open(context.Background(), client.Ref{Name: "SCAN_20260224_(8FC93AFE0300_93).pdf"})
	if errors.Is(err, client.ErrNotFound) {
		fmt.Println("no such file")
		return
	} else if err != nil {
		fmt.Println(err)
		return
	}
	defer body.Close()
	// io.Copy returns nil only if all bytes arrived and matched their CRC-32C.
	if _, err := io.Copy(os.Stdout, body); err != nil {
		fmt.Println(err)
	}
}

// Read many files of one container with one request, as a stream.
func ExampleReader_Batch() {
	c, err := client.NewReader("http://127.0.0.1:8090", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	req := client.BatchRequest{Container: "scans/2026-02-24/0a1f/c0190a2b3c4d5e6f7/c0190a2b3c4d5e6f7.des", Names: []string{"a.pdf", "b.pdf"}}
	for part, err := range c.Batch(context.Background(), req) {
		switch {
		case part == nil: // the stream failed: every file not yet seen is unread
			fmt.Println(err)
			return
		case part.Missing:
			fmt.Println(part.Name, "not found")
			continue
		}
		data, err := part.Bytes() // verified against the part's CRC-32C
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(part.Name, len(data), "bytes from", part.Container)
	}
}

// Ask the name service for names to give new objects.
func ExampleNames_New() {
	c, err := client.NewNames("http://des-name-service.des-system", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	names, err := c.New(context.Background(), 3, client.NameOptions{Prefix: "SCAN", ShardBits: 12})
	var se *client.StatusError
	if errors.As(err, &se) && se.Status == 503 {
		fmt.Println("this replica holds no node id; retry")
		return
	} else if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range names {
		fmt.Println(n.Name, n.Shard)
	}
}
