// Package policy is netwarden's nwfilter language: libvirt's nwfilter and
// nwfilter-binding XML as a typed, validated model, the filter graph and the
// instantiation of filters into backend-neutral rules.
//
// Parsing and formatting a filter:
//
//	f, err := policy.ParseFilter(xmlBytes)
//	if policy.IsValidationError(err) {
//		// err names the filter, rule, element, attribute, value and reason:
//		// filter "web": rule 3 <tcp dstportstart='70000'>: out of range 0..65535
//	}
//	for _, e := range f.Entries {
//		if e.Rule != nil && e.Rule.Match != nil {
//			for _, fl := range e.Rule.Match.Fields {
//				fmt.Println(fl.Attr, fl.Kind, fl.Value) // e.g. "dstportstart 16-bit number 22"
//			}
//		}
//	}
//	out, err := f.FormatXML() // libvirt-style XML, values in canonical form
//
// A binding (the filter applied to one port):
//
//	b, err := policy.ParseBinding(bindingXML)
//	// b.PortDev, b.MAC, b.Filter, b.Params
//
// # The XML layer
//
// libvirt's XML formats are the data model: a libvirt user brings their
// nwfilter definitions unchanged. ParseFilter accepts what libvirt 9.0's
// parser accepts, with these differences, all in the direction of
// refusing: where libvirt silently drops or replaces a value it cannot use
// (a port of 70000, a rule priority of 1001, a mask without its address, a
// comment longer than 256 bytes, an unknown attribute, a second protocol
// element in a rule, …), netwarden reports a *ValidationError instead, so
// what is stored is always what the user meant. Values are kept in the
// canonical text libvirt formats them in (Value.Literal), typed by a Kind
// that instantiation also uses to check the values substituted for
// variables ($X, $X[N], $X[@K]).
//
// FormatXML reproduces libvirt's formatting (attribute order, defaults
// printed, canonical values), so the conformance data of libvirt's own
// test suite round-trips; see conformance_test.go.
//
// This layer does not resolve filter references, assign UUIDs, check
// variables against parameters or know anything about nftables or
// iptables.
package policy
