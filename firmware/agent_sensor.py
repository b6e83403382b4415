# The sensor the agent serves: the internal temperature (esp32.mcu_temperature, the nRF's machine.Temp), an ADC
# pin (machine.ADC, raw 16-bit), a driver module of your own ("module:NAME": NAME.read() -> number), or on the
# virtual board a simulated temperature (a slow deterministic walk, so notifications change).
import sys


class Sensor:
    def __init__(self, kind="auto", pin=34):
        self.kind = kind
        self.pin = pin
        self._dev = None
        self._sim = 0
        if kind == "auto":
            self.kind = "sim" if sys.platform == "linux" else "temp"
        if self.kind[:7] == "module:":
            self._dev = __import__(self.kind[7:])
        elif self.kind == "adc":
            import machine
            self._dev = machine.ADC(machine.Pin(pin))

    def read(self):
        k = self.kind
        if k == "sim":
            self._sim = (self._sim + 7) % 40
            return 21.0 + (self._sim if self._sim < 20 else 40 - self._sim) / 10
        if k == "adc":
            return self._dev.read_u16()
        if self._dev is not None:
            return self._dev.read()
        try:
            import esp32
            return esp32.mcu_temperature()
        except (ImportError, AttributeError):
            import machine
            return machine.Temp().read()  # nrf port
