"""Everything that talks to ngspice and to the OpenVAF compiler."""
