// Package objects is tlcvm's user-creatable QOM objects (QEMU 7.2's qom/object_interfaces.c
// and the types behind -object and object-add): their ids under /objects, their
// properties, what each type holds of the host, and whether something uses them. It
// imports neither qmp nor machine; the QMP layer hands it decoded options, and memory
// hotplug asks it for memory back-ends.
//
// # Types
//
//	secret, secret_keyring     the secret's bytes: data= or file= (raw or base64), decrypted
//	                           with keyid= (another secret, a 32-byte AES-256 key) and iv=
//	                           (AES-256-CBC, PKCS#7 padding), as libvirt sends them
//	memory-backend-ram         size (and QEMU's defaults: merge, dump from the machine's
//	memory-backend-memfd       dump-guest-core, reserve, policy); memfd and file hold a
//	memory-backend-file        memfd or the backing file, which a DIMM maps; a back-end a
//	                           DIMM uses cannot be deleted
//	iothread                   a real OS thread (its id is query-iothreads' thread-id) with
//	                           its event-loop parameters, changed live (SetParam: qom-set)
//	rng-random, rng-egd,       the random source opened (filename, /dev/urandom by default),
//	rng-builtin                the chardev checked
//	main-loop                  one at most
//	every other type           its options checked (by the QMP layer) and kept
//
// Objects are listed in creation order. A failed creation leaves nothing.
package objects
