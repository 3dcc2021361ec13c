package network_test

import (
	"fmt"

	"github.com/netwarden/netwarden/network"
)

func ExampleParse() {
	n, err := network.Parse([]byte(`<network>
  <name>default</name>
  <forward dev='eth0'/>
  <bridge name='virbr0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.ForwardMode(), n.Forward.Dev(), n.Bridge.Name, n.IPs[0].Subnet())
	out, _ := n.FormatXML()
	fmt.Print(string(out))

	_, err = network.Parse([]byte(`<network><name>x</name><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.1.2' end='10.0.1.9'/></dhcp></ip></network>`))
	fmt.Println(err)
	// Output:
	// nat eth0 virbr0 192.168.122.0/24
	// <network>
	//   <name>default</name>
	//   <forward dev='eth0' mode='nat'>
	//     <interface dev='eth0'/>
	//   </forward>
	//   <bridge name='virbr0' stp='on' delay='0'/>
	//   <ip address='192.168.122.1' netmask='255.255.255.0'>
	//     <dhcp>
	//       <range start='192.168.122.2' end='192.168.122.254'/>
	//     </dhcp>
	//   </ip>
	// </network>
	// network "x": <range start='10.0.1.2'> (line 1): not inside the network 10.0.0.0/24
}
