"""USB pieces shared by the USB drivers (palm scanner, HID card readers): the pyusb link and
the simulated bus their simulated drivers run on."""
