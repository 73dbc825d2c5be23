// ecg12 reference sketch: samples an AD8232-style front end on a timer and sends ecg12
// frames over USB serial and, on ESP32, as notifications of a BLE characteristic.
// Wiring, sampling and status bits: see ../README.md. Protocol: firmware_bridge/SPEC.md.
// Boards: ESP32 (Arduino core 3.x) or AVR (Uno/Nano: serial only).

#include <Arduino.h>

#include "src/ecg12_frame.h"

// ---- configuration ---------------------------------------------------------------
#define FS_HZ 250u             // sampling rate
#define SAMPLES_PER_FRAME 25u  // 10 frames/s; int16 frame = 15 + 50 + 4 = 69 bytes
#define STREAM_ID 0u
#define SERIAL_BAUD 115200     // 69 bytes x 10/s = 690 B/s, well within 115200 baud

#if defined(ESP32)
#define PIN_ECG 36       // AD8232 OUTPUT -> GPIO36 (ADC1_CH0, input only)
#define PIN_LO_PLUS 34   // AD8232 LO+
#define PIN_LO_MINUS 35  // AD8232 LO-
#define PIN_BATTERY 39   // battery divider (1:2) -> GPIO39; comment out if absent
#define ADC_BITS 12
#else
#define PIN_ECG A0
#define PIN_LO_PLUS 10
#define PIN_LO_MINUS 11
#define ADC_BITS 10
#endif
#define ADC_VREF_UV 3300000.0f  // ADC full scale in µV (3.3 V)
#define FRONT_END_GAIN 1100.0f  // AD8232 heart-rate-monitor breakout total gain
#define BATTERY_LOW_MV 3400     // status BATTERY_LOW below this (LiPo)

static const float UV_PER_COUNT = ADC_VREF_UV / (float)(1ul << ADC_BITS) / FRONT_END_GAIN;
static const int ADC_MID = 1 << (ADC_BITS - 1);
static const int ADC_MAX = (1 << ADC_BITS) - 1;

static ecg12_encoder_t encoder;
static int32_t samples_uv[SAMPLES_PER_FRAME];
static uint8_t frame_buf[ECG12_HEADER_LEN + 3 * SAMPLES_PER_FRAME + ECG12_CRC_LEN];
static uint8_t n_samples = 0;
static uint8_t frame_status = 0;
static uint32_t frame_t0_us = 0;
static volatile uint32_t ticks_pending = 0;  // set by the timer, consumed by loop()
static volatile uint32_t tick_time_us = 0;

#if defined(ESP32)
#include <BLE2902.h>
#include <BLEDevice.h>
#include <BLEServer.h>
// ecg12 BLE service: one notify characteristic carrying whole ecg12 frames.
#define ECG12_SERVICE_UUID "ec120000-5a1e-4c0d-9f6e-6ec9d2a4b001"
#define ECG12_FRAME_UUID "ec120001-5a1e-4c0d-9f6e-6ec9d2a4b001"
static BLECharacteristic *frame_char = nullptr;
static bool ble_connected = false;

class ServerCallbacks : public BLEServerCallbacks {
    void onConnect(BLEServer *) override { ble_connected = true; }
    void onDisconnect(BLEServer *server) override {
        ble_connected = false;
        server->getAdvertising()->start();  // advertise again for the next connection
    }
};

static hw_timer_t *timer = nullptr;
static void IRAM_ATTR on_timer() {
    ticks_pending++;
    tick_time_us = micros();
}

static void setup_ble() {
    BLEDevice::init("ecg12-ad8232");
    BLEDevice::setMTU(185);  // a 69-byte frame needs MTU >= 72
    BLEServer *server = BLEDevice::createServer();
    server->setCallbacks(new ServerCallbacks());
    BLEService *service = server->createService(ECG12_SERVICE_UUID);
    frame_char = service->createCharacteristic(ECG12_FRAME_UUID,
                                               BLECharacteristic::PROPERTY_NOTIFY);
    frame_char->addDescriptor(new BLE2902());
    service->start();
    BLEAdvertising *adv = BLEDevice::getAdvertising();
    adv->addServiceUUID(ECG12_SERVICE_UUID);
    adv->start();
}

static void setup_timer() {
    timer = timerBegin(1000000);  // 1 MHz tick (core 3.x API)
    timerAttachInterrupt(timer, &on_timer);
    timerAlarm(timer, 1000000ul / FS_HZ, true, 0);
}
#else
static uint32_t next_tick_us = 0;
static void poll_timer() {  // AVR: micros()-based scheduler, no drift accumulation
    uint32_t now = micros();
    if ((int32_t)(now - next_tick_us) >= 0) {
        next_tick_us += 1000000ul / FS_HZ;
        ticks_pending++;
        tick_time_us = now;
    }
}
#endif

static bool battery_low() {
#if defined(ESP32) && defined(PIN_BATTERY)
    return analogReadMilliVolts(PIN_BATTERY) * 2 < BATTERY_LOW_MV;
#else
    return false;
#endif
}

static void send_frame() {
    if (battery_low()) frame_status |= ECG12_STATUS_BATTERY_LOW;
    size_t len = ecg12_encoder_next(&encoder, frame_status, frame_t0_us, samples_uv, n_samples,
                                    frame_buf, sizeof frame_buf);
    if (len) {
        Serial.write(frame_buf, len);
#if defined(ESP32)
        if (ble_connected) {
            frame_char->setValue(frame_buf, len);
            frame_char->notify();
        }
#endif
    }
    n_samples = 0;
    frame_status = 0;
}

static void take_sample(uint32_t t_us) {
    if (n_samples == 0) frame_t0_us = t_us;
    const bool lead_off = digitalRead(PIN_LO_PLUS) == HIGH || digitalRead(PIN_LO_MINUS) == HIGH;
    const int raw = analogRead(PIN_ECG);
    if (lead_off) frame_status |= ECG12_STATUS_LEAD_OFF;
    if (raw <= 0 || raw >= ADC_MAX) frame_status |= ECG12_STATUS_SATURATION;
    samples_uv[n_samples++] = lead_off ? 0 : (int32_t)((raw - ADC_MID) * UV_PER_COUNT);
    if (n_samples == SAMPLES_PER_FRAME) send_frame();
}

void setup() {
    Serial.begin(SERIAL_BAUD);
    pinMode(PIN_LO_PLUS, INPUT);
    pinMode(PIN_LO_MINUS, INPUT);
#if defined(ESP32)
    analogReadResolution(ADC_BITS);
#endif
    ecg12_encoder_init(&encoder, STREAM_ID, ECG12_FMT_INT16, FS_HZ);
#if defined(ESP32)
    setup_ble();
    setup_timer();
#else
    next_tick_us = micros();
#endif
}

void loop() {
#if !defined(ESP32)
    poll_timer();
#endif
    noInterrupts();
    uint32_t pending = ticks_pending;
    ticks_pending = 0;
    uint32_t t_us = tick_time_us;
    interrupts();
    // if loop() fell behind, sample now for each missed tick; the timestamps stay on the
    // nominal grid because the first sample of a frame carries the frame's time.
    for (uint32_t i = 0; i < pending; i++) {
        take_sample(t_us - (pending - 1 - i) * (1000000ul / FS_HZ));
    }
}
