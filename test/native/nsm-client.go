// Test client for the seccomp route, written the way Go NSM libraries reach the device: the
// runtime's own system calls (syscall.Open, then SYS_IOCTL through syscall.Syscall), no libc.
// Built with CGO_ENABLED=0, so the binary is static and LD_PRELOAD cannot reach it.
//
//	nsm-client-go send HEX...                one ioctl per HEX: "ok LEN HEX" / "err NAME"
//	nsm-client-go threads G N HEXA HEXB      G goroutines share the descriptor, N ioctls each;
//	                                         each answer compared with a first reference answer
package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

const nsmIoctlRaw = 0xC0200A00

type iovec struct{ addr, len uint64 }
type nsmRaw struct{ request, response iovec }

func call(fd int, req []byte, resp []byte) (int, syscall.Errno) {
	raw := nsmRaw{}
	if len(req) > 0 {
		raw.request = iovec{uint64(uintptr(unsafe.Pointer(&req[0]))), uint64(len(req))}
	}
	raw.response = iovec{uint64(uintptr(unsafe.Pointer(&resp[0]))), uint64(len(resp))}
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), nsmIoctlRaw, uintptr(unsafe.Pointer(&raw)))
	if e != 0 {
		return 0, e
	}
	return int(raw.response.len), 0
}

func errName(e syscall.Errno) string {
	names := map[syscall.Errno]string{syscall.EMSGSIZE: "EMSGSIZE", syscall.EFAULT: "EFAULT", syscall.EINVAL: "EINVAL", syscall.EIO: "EIO", syscall.ENOENT: "ENOENT", syscall.ENXIO: "ENXIO"}
	if n, ok := names[e]; ok {
		return n
	}
	return fmt.Sprintf("E%d", int(e))
}

func open() int {
	fd, err := syscall.Open("/dev/nsm", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		fmt.Printf("open-failed %s\n", errName(err.(syscall.Errno)))
		os.Exit(3)
	}
	return fd
}

func main() {
	if len(os.Args) < 2 {
		os.Exit(2)
	}
	fd := open()
	resp := make([]byte, 0x3000)
	switch os.Args[1] {
	case "send":
		for _, h := range os.Args[2:] {
			req, _ := hex.DecodeString(h)
			n, e := call(fd, req, resp)
			if e != 0 {
				fmt.Printf("err %s\n", errName(e))
			} else {
				fmt.Printf("ok %d %s\n", n, hex.EncodeToString(resp[:n]))
			}
		}
	case "threads":
		g, _ := strconv.Atoi(os.Args[2])
		n, _ := strconv.Atoi(os.Args[3])
		var reqs, want [2][]byte
		for k := 0; k < 2; k++ {
			reqs[k], _ = hex.DecodeString(os.Args[4+k])
			m, e := call(fd, reqs[k], resp)
			if e != 0 {
				os.Exit(4)
			}
			want[k] = append([]byte(nil), resp[:m]...)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		bad, errs := 0, 0
		for i := 0; i < g; i++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				buf := make([]byte, 0x3000)
				for j := 0; j < n; j++ {
					m, e := call(fd, reqs[k], buf)
					mu.Lock()
					if e != 0 {
						errs++
					} else if !bytes.Equal(buf[:m], want[k]) {
						bad++
					}
					mu.Unlock()
				}
			}(i % 2)
		}
		wg.Wait()
		fmt.Printf("calls %d mismatches %d errors %d\n", g*n, bad, errs)
	default:
		os.Exit(2)
	}
	if syscall.Close(fd) == nil {
		fmt.Println("close 0")
	} else {
		fmt.Println("close -1")
	}
}
