package network

// SetFailAt makes CreateBridge of l fail at every step for which f returns
// an error (f gets the step's description, such as "set up"). Tests only.
func SetFailAt(l *Links, f func(step string) error) { l.failAt = f }
