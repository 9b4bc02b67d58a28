#!/usr/bin/env python3
"""Speaks to a speech server exactly as Vosk's own test client does: a config message with the
file's rate, binary chunks of 8000 bytes each answered by one reply, then {"eof" : 1} answered
by the final result. Prints every reply on its own line.

Usage: vosk_client.py ws://127.0.0.1:2700 FILE.wav
"""

import asyncio
import sys
import wave

import websockets


async def run_test(uri, path):
    async with websockets.connect(uri) as websocket:
        wf = wave.open(path, "rb")
        await websocket.send('{ "config" : { "sample_rate" : %d } }' % (wf.getframerate()))
        buffer_size = 4000  # frames: 8000 bytes of 16-bit mono
        while True:
            data = wf.readframes(buffer_size)
            if len(data) == 0:
                break
            await websocket.send(data)
            print(await websocket.recv())
        await websocket.send('{"eof" : 1}')
        print(await websocket.recv())


asyncio.run(run_test(sys.argv[1], sys.argv[2]))
