// Command hello is the binary TestBuildBinary builds.
package main

import "fmt"

func main() { fmt.Println("hello") }
