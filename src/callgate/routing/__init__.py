"""External numbers (DIDs) and SIP trunks: how calls enter and leave a client."""
