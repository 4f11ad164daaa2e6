// Command pause is the test world's pod sandbox image (TEST TOOLING): containerd needs a pause image
// for every pod and nothing can be pulled here. It sleeps until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
