/*
 * marker: writes the debug port (0x80) that puts guest markers on bootvm's
 * boot timeline (docs/MACHINE.md): 1 and 2 around a line of output, a word
 * and a dword write, then a flood of 200 writes of 0x42, of which bootvm
 * records only what its bound leaves room for and counts the rest.
 */
#include "runtime.h"

#define PORT_DEBUG 0x80
#define FLOOD 200


void guest_main(void)
{
	outb(PORT_DEBUG, 1);
	print("marker: between 1 and 2\n");
	outb(PORT_DEBUG, 2);
	outw(PORT_DEBUG, 0x1234);
	outl(PORT_DEBUG, 0xdeadbeef);
	outb(PORT_DEBUG + 1, 9);	/* not the marker port itself: no marker */
	for (int i = 0; i < FLOOD; i++)
		outb(PORT_DEBUG, 0x42);
	print("marker: done\n");
}
