/*
 * nosymbol.c - a valid shared object that is not a libtrain plugin: it
 * exports a function but no train_plugin_descriptor.  The registry must
 * refuse it ("not a libtrain plugin") and still load its neighbours.
 */
int train_test_nosymbol_answer(void);

int train_test_nosymbol_answer(void)
{
	return 42;
}
