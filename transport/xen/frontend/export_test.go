package frontend

// RequestSlotsForTest is the request slot area of an SRP ring.
func RequestSlotsForTest(c *SRPConn) []byte { return c.ringMem[4096 : 4096+c.geo.Pages()*4096] }
